#!/usr/bin/env bash
# Fault comparison under load: the same uncatchable faults injected into
# forkpool's two architectures at equal concurrency (process mode with K
# workers, thread mode with 1 worker x K threads), each under steady load,
# and what each fault cost.
#
#   scripts/crash-compare.sh [--quick | --smoke] [-k K] [--faults LIST]
#                            [--repeat N] [--tool client|wrk|oha]
#                            [--connections N] [--rate N] [--path PATH]
#                            [--timeout DUR]
#                            [--graceful-timeout DUR] [--max-rss SIZE]
#                            [--leak-mb N] [--server-cpus LIST]
#                            [--load-cpus LIST] [--no-pin] [--bin PATH]
#                            [--out DIR]
#
# Reproduce the README's numbers:   scripts/crash-compare.sh --quick
# CI (checks the script, not the numbers):   scripts/crash-compare.sh --smoke
#
# Faults (--faults takes a comma list): abort (SIGABRT), segv (a real
# SIGSEGV), hang (the handler never returns; the watchdog acts after
# --timeout), leak (/-/fault/leak?mb=96 with max_rss = 64MiB: the worker
# is recycled); sent as POST, or as GET to a server that answers 405.
# Each trial runs on a fresh server: load starts, the fault is injected
# once every worker is 5.5 s old (a younger worker's death would be
# slowed down by the crash-loop guard), and the trial ends once a replacement
# has served, no old worker is left draining, and 1.5 s more passed.
#
# Measured per fault and mode:
#   failed requests       load requests that failed (reset, EOF, timeout,
#                         non-2xx); the request carrying the fault is apart
#   connections lost      keep-alive connections that died with a failure,
#                         out of those open at the fault: the blast radius
#   stalled               requests that took over 1 s (hung with the worker)
#   time to detect        fault -> the master acts: a death reaped, or a
#                         replacement started (from /-/status timestamps)
#   time to serve         fault -> first response from a new worker (load
#                         connections, or a fresh-connection probe every 100 ms)
#   throughput timeline   /-/status sampled every 100 ms (fresh connection,
#                         0.3 s deadline), per-worker request counters
#                         differenced: works whatever the load tool is
# The load (--tool client, default) is scripts/lib/crash_trial.py: N threads,
# each holding one keep-alive connection, looping GET --path (default
# /-/work/cpu?ms=1, which names the pid that served it), paced to --rate
# requests a second in all (default 500, about half of what one core serves
# on that path: a steady load with headroom; 0 = as fast as answered).
# --tool wrk or oha loads with that tool instead (oha paced with -q, wrk
# unpaced): the timeline and the times are the same, but only aggregate
# errors are known (no blast radius).
#
# Why not saturate: a saturated thread-mode worker stops accepting new
# connections until its pool's overflow queue is empty, so new connections
# (a respawned sampler's, the probes) can wait for as long as the load
# lasts. The sampler and the fault's connection are therefore opened before
# the load; the probes' failures are reported, before and after the fault.
#
# Defaults: K=2, 16 connections at 500 req/s, faults abort,segv,hang,leak, 3 repeats
# (medians), supervisor timeout 2s, graceful_timeout 3s, max_rss 64MiB.
# --quick: 1 repeat (about 2 minutes). --smoke: abort only, 1 repeat (about
# 20 s); it fails (exit 1) when a trial did not run, the load saw no
# request, no death or replacement was seen, or an output is missing.
#
# --bin PATH uses that forkpool binary instead of building and using
# target/release/forkpool (CI passes the debug build, target/debug/forkpool).
#
# Pinning as scripts/bench.sh: server on the last CPU, load and sampler on
# the others. Writes results/<timestamp>-crash/ (or --out DIR): report.md,
# results.json, timeline.svg and timeline.png (gnuplot: throughput over time,
# the fault at t = 0, one line per architecture, one panel per fault), raw/
# (every trial's events and server log). Needs python3 and gnuplot
# (apt-get install -y gnuplot-nox). Traffic goes to 127.0.0.1 only; every
# process started here is stopped on exit or Ctrl+C.
set -euo pipefail
export PYTHONDONTWRITEBYTECODE=1  # no __pycache__ in scripts/lib

usage() { sed -n '2,/^set -euo/p' "$0" | sed -n 's/^# \{0,1\}//p'; }
die() { echo "crash-compare.sh: $*" >&2; exit 2; }

# shellcheck source=scripts/lib/common.sh
. "$(dirname "$0")/lib/common.sh"

argv=("$@")
k=2 faults="abort,segv,hang,leak" repeat=3 tool=client connections=16 rate=500
path="/-/work/cpu?ms=1" timeout=2s graceful=3s max_rss=64MiB leak_mb=96
server_cpus="" load_cpus="" pin=1 bin="" out="" profile=full
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) profile=quick; repeat=1; shift ;;
    --smoke) profile=smoke; repeat=1 faults=abort; shift ;;
    -k|--k) k=$2; shift 2 ;;
    --faults) faults=$2; shift 2 ;;
    --repeat) repeat=$2; shift 2 ;;
    --tool) tool=$2; shift 2 ;;
    --connections) connections=$2; shift 2 ;;
    --rate) rate=$2; shift 2 ;;
    --path) path=$2; shift 2 ;;
    --timeout) timeout=$2; shift 2 ;;
    --graceful-timeout) graceful=$2; shift 2 ;;
    --max-rss) max_rss=$2; shift 2 ;;
    --leak-mb) leak_mb=$2; shift 2 ;;
    *) shared_option "$@" || die "unknown option $1 (see --help)"; shift "$consumed" ;;
  esac
done

posint() { [[ $2 =~ ^[1-9][0-9]*$ ]] || die "$1 must be a positive integer, not '$2'"; }
posint -k "$k"; posint --repeat "$repeat"; posint --connections "$connections"; posint --leak-mb "$leak_mb"
[[ $rate =~ ^[0-9]+$ ]] || die "--rate must be a whole number of requests a second (0 = unpaced), not '$rate'"
[ "$connections" -ge 2 ] || die "--connections must be at least 2"
case "$tool" in client|wrk|oha) ;; *) die "--tool must be client, wrk or oha, not '$tool'" ;; esac
[[ $path == /* ]] || die "--path must start with /"
IFS=, read -r -a fault_list <<< "$faults"
[ "${#fault_list[@]}" -gt 0 ] || die "--faults is empty"
for f in "${fault_list[@]}"; do
  case "$f" in abort|segv|hang|leak) ;; *) die "unknown fault '$f' (abort segv hang leak)" ;; esac
done

cd "$(dirname "$0")/.."
root=$(pwd)
lib="$root/scripts/lib"
command -v python3 >/dev/null || die "needs python3"
command -v gnuplot >/dev/null || die "needs gnuplot for the chart (apt-get install -y gnuplot-nox)"
[ "$tool" = client ] || command -v "$tool" >/dev/null || die "$tool is not installed"

setup_pinning
setup_output crash
site=$(mktemp -d)

# --- cleanup: everything started here, by pid --------------------------------
server_pid="" trial_pid=""
cleanup() {
  [ -z "$trial_pid" ] || stop_pid "$trial_pid" TERM
  [ -z "$server_pid" ] || stop_pid "$server_pid" QUIT
  wait 2>/dev/null || true
  rm -rf "$site"
}
trap cleanup EXIT
trap 'echo "crash-compare.sh: interrupted" >&2; exit 130' INT TERM

head -c 1024 /dev/urandom | base64 -w 0 | head -c 1024 > "$site/1k.txt"
cat > "$raw/forkpool.toml" <<EOF
# crash-compare.sh: short supervision times so a trial takes seconds.
access_log = false

[supervisor]
timeout = "$timeout"
graceful_timeout = "$graceful"
max_rss = "$max_rss"

[faults]
enabled = true
EOF

modes=(process thread)
declare -A m_workers=([process]=$k [thread]=1) m_threads=([process]=1 [thread]=$k)

# start_server MODE LOG: starts forkpool, sets $server_pid and $port.
start_server() {
  local mode=$1 log=$2 p="" deadline=$((SECONDS + 15))
  # Created here: the background job opens its redirections only once it runs.
  : > "$log.out"
  "${pin_server[@]}" "$bin" "$site" --config "$raw/forkpool.toml" --listen 127.0.0.1:0 \
    --mode "$mode" --workers "${m_workers[$mode]}" --threads "${m_threads[$mode]}" \
    > "$log.out" 2> "$log" &
  server_pid=$!
  while [ -z "$p" ]; do
    p=$(sed -n 's#^listening on http://127.0.0.1:\([0-9]*\)$#\1#p' "$log.out")
    if [ -z "$p" ]; then
      if ! kill -0 "$server_pid" 2>/dev/null || [ $SECONDS -ge $deadline ]; then
        echo "crash-compare.sh: the $mode server did not start:" >&2
        tail -n 20 "$log" >&2
        exit 1
      fi
      sleep 0.05
    fi
  done
  port=$p
}

# stop_server: fast stop (SIGQUIT), then make sure no worker outlived it.
stop_server() {
  local trial_json=$1 pid
  stop_pid "$server_pid" QUIT
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
  # Every worker pid the trial saw: none may survive its master.
  for pid in $(python3 "$lib/crash_report.py" --pids "$trial_json" 2>/dev/null || true); do
    local i
    for i in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    if kill -0 "$pid" 2>/dev/null && grep -q forkpool "/proc/$pid/cmdline" 2>/dev/null; then
      echo "crash-compare.sh: worker $pid outlived its master by 2 s; killing it" >&2
      echo "worker $pid outlived its master by 2 s (killed)" >> "$raw/strays.txt"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
}

wl_secs=$(( ${#fault_list[@]} * ${#modes[@]} * repeat ))
echo "crash-compare.sh: K=$k (process ${k}x1, thread 1x$k), load: $tool, $connections connections," \
  "$([ "$rate" -gt 0 ] && echo "$rate req/s" || echo "unpaced") on $path"
echo "  faults: ${fault_list[*]}; repeats: $repeat; supervisor timeout $timeout, graceful_timeout $graceful, max_rss $max_rss"
echo "  server cpus: ${server_cpus:-any}; load cpus: ${load_cpus:-any}; output: $out"
echo "  $wl_secs trials, about $((wl_secs * 11 / 60 + 1)) min"

python3 "$lib/compare_report.py" --write-meta "$raw/meta.json" \
  script=crash-compare.sh profile="$profile" command="scripts/crash-compare.sh ${argv[*]}" \
  started="$(date -Iseconds)" k="$k" tool="$tool" connections="$connections" rate="$rate" path="$path" \
  timeout="$timeout" graceful_timeout="$graceful" max_rss="$max_rss" leak_mb="$leak_mb" \
  repeat="$repeat" faults="$faults" server_cpus="$server_cpus" load_cpus="$load_cpus" \
  nproc="$ncpu" kernel="$(uname -r)" \
  cpu_model="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//' || true)" \
  git="$(git describe --always --dirty 2>/dev/null || true)" binary="$bin"

mkdir -p "$raw/trials"
total=$wl_secs i=0 failed=0 started_at=$SECONDS
for r in $(seq 1 "$repeat"); do
  for fault in "${fault_list[@]}"; do
    for mode in "${modes[@]}"; do
      i=$((i + 1))
      name="$fault.$mode.r$r"
      left=""
      [ "$i" -gt 1 ] && left=", ~$(( (SECONDS - started_at) * (total - i + 1) / (i - 1) ))s left"
      echo "  [$i/$total] $fault on $mode (repeat $r/$repeat; $((total - i)) after this$left)"
      start_server "$mode" "$raw/trials/$name.server.log"
      "${pin_load[@]}" python3 "$lib/crash_trial.py" --port "$port" --fault "$fault" \
        --workers "${m_workers[$mode]}" --out "$raw/trials/$name.json" --tool "$tool" \
        --connections "$connections" --rate "$rate" --path "$path" --leak-mb "$leak_mb" &
      trial_pid=$!
      if ! wait "$trial_pid"; then
        echo "crash-compare.sh: trial $name failed (see $raw/trials/$name.json)" >&2
        failed=$((failed + 1))
      fi
      trial_pid=""
      stop_server "$raw/trials/$name.json"
    done
  done
done

strict=()
[ "$profile" = smoke ] && strict=(--strict)
python3 "$lib/crash_report.py" "$out" "${strict[@]}" || failed=$((failed + 1))
[ "$failed" -eq 0 ]
