#!/usr/bin/env bash
# Load comparison of forkpool's two architectures at equal concurrency:
# process mode with K workers (K event loops) against thread mode with one
# worker x K pool threads (optionally a hybrid W workers x T threads, W*T=K),
# on the same workloads, in one run, rounds interleaved (A, B, A, B, ...),
# medians reported.
#
#   scripts/compare.sh [--quick | --smoke] [-k K] [--hybrid WxT]
#                      [--tool wrk|oha] [--connections N] [--duration SECS]
#                      [--rounds N] [--warmup SECS] [--workloads LIST]
#                      [--cpu-ms N] [--io-ms N] [--mem-kb N] [--shared-ops N]
#                      [--server-cpus LIST] [--load-cpus LIST] [--no-pin]
#                      [--bin PATH] [--out DIR]
#
# Reproduce the README's numbers:   scripts/compare.sh --quick
# CI (checks the script, not the numbers):   scripts/compare.sh --smoke
#
# Workloads (--workloads takes a comma list of these names):
#   static-1k  GET /1k.txt                 static-1m  GET /1m.bin (sendfile)
#   cpu        /-/work/cpu?ms=2            io         /-/work/io?ms=10
#   mem        /-/work/mem?kb=1024         shared     /-/work/shared?ops=10000
#   tabs       the scripts/tabs.lua browser-tab mix (with oha: the same URLs
#              and weights, each request picking one at random)
#
# Measured per workload and mode: req/s, p50 and p99 latency, errors (socket
# errors + non-2xx), and from the scoreboard (GET /-/status before and after
# each run, and sampled every 0.5 s during it): context switches per request
# (voluntary + involuntary, all threads of all workers), CPU time per request
# (user + sys), and total PSS of the workers (the peak seen during the run).
#
# Defaults: K=2 (this machine has 2 cores, and `workers = auto` would pick
# 2), 32 connections, 5 rounds x 5 s, 2 s warm-up per server and workload,
# wrk (2 threads). --quick: 3 rounds x 2 s, 1 s warm-up (about 2 minutes on
# 2 cores). --smoke: 1 round x 1 s of static-1k and tabs, no warm-up; it
# fails (exit 1) on any error, a run with zero requests or a missing output.
#
# Pinning: with 2 or more CPUs the server(s) get the last CPU and the load
# generator (and the scoreboard sampler) the others, as in scripts/bench.sh.
# So the server side has ONE core: K workers or K threads share it, and a
# parallel speed-up can't show; lock contention shows only when a thread is
# preempted holding the lock. Pass --no-pin (or your own CPU lists) to change.
#
# --bin PATH uses that forkpool binary instead of building and using
# target/release/forkpool (CI passes the debug build, target/debug/forkpool).
#
# Writes results/<timestamp>-compare/ (or --out DIR): report.md (a table per
# workload, and the classic claims beside what this run measured),
# results.json, chart.svg and chart.png (gnuplot), raw/ (every tool output,
# scoreboard snapshot and server log). Needs python3, gnuplot
# (apt-get install -y gnuplot-nox) and wrk (apt-get install -y wrk) or oha.
# Traffic goes to 127.0.0.1 only; every process started here is stopped on
# exit or Ctrl+C.
set -euo pipefail
export PYTHONDONTWRITEBYTECODE=1  # no __pycache__ in scripts/lib

usage() { sed -n '2,/^set -euo/p' "$0" | sed -n 's/^# \{0,1\}//p'; }
die() { echo "compare.sh: $*" >&2; exit 2; }

# shellcheck source=scripts/lib/common.sh
. "$(dirname "$0")/lib/common.sh"

argv=("$@")
k=2 hybrid="" tool="" connections=32 duration=5 rounds=5 warmup=2
workloads="static-1k,static-1m,cpu,io,mem,shared,tabs"
cpu_ms=2 io_ms=10 mem_kb=1024 shared_ops=10000
server_cpus="" load_cpus="" pin=1 bin="" out="" profile=full
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) profile=quick; rounds=3 duration=2 warmup=1; shift ;;
    --smoke) profile=smoke; rounds=1 duration=1 warmup=0 workloads="static-1k,tabs"; shift ;;
    -k|--k) k=$2; shift 2 ;;
    --hybrid) hybrid=$2; shift 2 ;;
    --tool) tool=$2; shift 2 ;;
    --connections) connections=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --workloads) workloads=$2; shift 2 ;;
    --cpu-ms) cpu_ms=$2; shift 2 ;;
    --io-ms) io_ms=$2; shift 2 ;;
    --mem-kb) mem_kb=$2; shift 2 ;;
    --shared-ops) shared_ops=$2; shift 2 ;;
    *) shared_option "$@" || die "unknown option $1 (see --help)"; shift "$consumed" ;;
  esac
done

# --- check the arguments ---------------------------------------------------
posint() { [[ $2 =~ ^[1-9][0-9]*$ ]] || die "$1 must be a positive integer, not '$2'"; }
posint -k "$k"; posint --connections "$connections"; posint --duration "$duration"
posint --rounds "$rounds"; posint --cpu-ms "$cpu_ms"; posint --io-ms "$io_ms"
posint --mem-kb "$mem_kb"; posint --shared-ops "$shared_ops"
[[ $warmup =~ ^[0-9]+$ ]] || die "--warmup must be a whole number of seconds, not '$warmup'"
[ "$connections" -ge 2 ] || die "--connections must be at least 2 (wrk runs 2 threads)"
hybrid_w="" hybrid_t=""
if [ -n "$hybrid" ]; then
  [[ $hybrid =~ ^([1-9][0-9]*)x([1-9][0-9]*)$ ]] || die "--hybrid takes WxT, e.g. 2x2, not '$hybrid'"
  hybrid_w=${BASH_REMATCH[1]} hybrid_t=${BASH_REMATCH[2]}
  [ $((hybrid_w * hybrid_t)) -eq "$k" ] || die "--hybrid ${hybrid}: W x T must equal K=$k (equal concurrency)"
fi
declare -A target=(
  [static-1k]=/1k.txt [static-1m]=/1m.bin
  [cpu]="/-/work/cpu?ms=$cpu_ms" [io]="/-/work/io?ms=$io_ms"
  [mem]="/-/work/mem?kb=$mem_kb" [shared]="/-/work/shared?ops=$shared_ops"
  [tabs]="scripts/tabs.lua"
)
IFS=, read -r -a wl_list <<< "$workloads"
[ "${#wl_list[@]}" -gt 0 ] || die "--workloads is empty"
for wl in "${wl_list[@]}"; do
  [ -n "${target[$wl]:-}" ] || die "unknown workload '$wl' (static-1k static-1m cpu io mem shared tabs)"
done

cd "$(dirname "$0")/.."
root=$(pwd)
lib="$root/scripts/lib"
if [ -z "$tool" ]; then
  if command -v wrk >/dev/null; then tool=wrk
  elif command -v oha >/dev/null; then tool=oha
  else die "needs wrk (apt-get install -y wrk) or oha (cargo install oha)"
  fi
fi
case "$tool" in wrk|oha) ;; *) die "--tool must be wrk or oha, not '$tool'" ;; esac
command -v "$tool" >/dev/null || die "$tool is not installed"
command -v python3 >/dev/null || die "needs python3"
command -v gnuplot >/dev/null || die "needs gnuplot for the chart (apt-get install -y gnuplot-nox)"

# --- pinning (as scripts/bench.sh): the last CPU serves, the others load ------
setup_pinning
setup_output compare
site=$(mktemp -d)

# --- cleanup: everything started here, by pid --------------------------------
server_pids=() bg_pids=()
cleanup() {
  local pid
  for pid in "${bg_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${server_pids[@]}"; do stop_pid "$pid" QUIT; done
  wait 2>/dev/null || true
  rm -rf "$site"
}
trap cleanup EXIT
trap 'echo "compare.sh: interrupted" >&2; exit 130' INT TERM

# --- the site and the config -------------------------------------------------
head -c 1024 /dev/urandom | base64 -w 0 | head -c 1024 > "$site/1k.txt"
head -c $((1024 * 1024)) /dev/urandom > "$site/1m.bin"
scripts/tabs-site.sh "$site" >/dev/null
cat > "$raw/forkpool.toml" <<EOF
# compare.sh: an access-log line per request would cost a write each.
access_log = false
EOF

# --- servers -----------------------------------------------------------------
# Each line of $raw/servers.tsv: name mode workers threads port master-pid
modes=(process thread)
declare -A m_mode=([process]=process [thread]=thread) m_workers=([process]=$k [thread]=1) m_threads=([process]=1 [thread]=$k)
if [ -n "$hybrid" ]; then
  modes+=(hybrid)
  m_mode[hybrid]=thread m_workers[hybrid]=$hybrid_w m_threads[hybrid]=$hybrid_t
fi
declare -A port=() master=()
start_server() {  # start_server NAME
  local name=$1 p="" deadline=$((SECONDS + 15))
  # Created here: the background job opens its redirections only once it runs.
  : > "$raw/server-$name.out"
  "${pin_server[@]}" "$bin" "$site" --config "$raw/forkpool.toml" --listen 127.0.0.1:0 \
    --mode "${m_mode[$name]}" --workers "${m_workers[$name]}" --threads "${m_threads[$name]}" \
    > "$raw/server-$name.out" 2> "$raw/server-$name.log" &
  server_pids+=($!)
  master[$name]=$!
  while [ -z "$p" ]; do
    p=$(sed -n 's#^listening on http://127.0.0.1:\([0-9]*\)$#\1#p' "$raw/server-$name.out")
    if [ -z "$p" ]; then
      if ! kill -0 "${master[$name]}" 2>/dev/null || [ $SECONDS -ge $deadline ]; then
        echo "compare.sh: the $name server did not start:" >&2
        tail -n 20 "$raw/server-$name.log" >&2
        exit 1
      fi
      sleep 0.05
    fi
  done
  port[$name]=$p
  if ! python3 "$lib/status_sampler.py" wait-ready "$p" --workers "${m_workers[$name]}" --timeout 15; then
    echo "compare.sh: the $name server has no working /-/status (needs a forkpool with the scoreboard endpoint)" >&2
    exit 1
  fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "${m_mode[$name]}" "${m_workers[$name]}" \
    "${m_threads[$name]}" "$p" "${master[$name]}" >> "$raw/servers.tsv"
}
check_server() {  # check_server NAME: still running?
  kill -0 "${master[$1]}" 2>/dev/null && return 0
  echo "compare.sh: the $1 server died:" >&2
  tail -n 20 "$raw/server-$1.log" >&2
  exit 1
}

# load NAME WORKLOAD SECONDS OUTFILE: one load run (wrk or oha), raw output kept.
load() {
  local name=$1 wl=$2 secs=$3 outfile=$4 base="http://127.0.0.1:${port[$1]}"
  if [ "$tool" = wrk ]; then
    if [ "$wl" = tabs ]; then
      "${pin_load[@]}" wrk -t2 -c "$connections" -d "${secs}s" --latency -s scripts/tabs.lua "$base" \
        > "$outfile" 2> "$outfile.err"
    else
      "${pin_load[@]}" wrk -t2 -c "$connections" -d "${secs}s" --latency "$base${target[$wl]}" \
        > "$outfile" 2> "$outfile.err"
    fi
  elif [ "$wl" = tabs ]; then
    # oha can't script a sequence: each request picks a random line of a file
    # holding every URL of the tab `weight` times (the weights of tabs.lua).
    sed -n -E '/^[[:space:]]*--/d
      s/.*kind *= *"([a-z]+)", *path *= *"([^"]+)", *weight *= *([0-9]+).*/\2 \3/p' scripts/tabs.lua |
      while read -r path weight; do
        for ((n = 0; n < weight; n++)); do echo "$base$path"; done
      done > "$outfile.urls"
    "${pin_load[@]}" oha --no-tui -c "$connections" -z "${secs}s" --output-format json \
      --urls-from-file "$outfile.urls" > "$outfile" 2> "$outfile.err"
  else
    "${pin_load[@]}" oha --no-tui -c "$connections" -z "${secs}s" --output-format json \
      "$base${target[$wl]}" > "$outfile" 2> "$outfile.err"
  fi
}

fmt_secs() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }

for name in "${modes[@]}"; do start_server "$name"; done

# meta.json: key=value pairs, typed by the report (no shell text inside Python).
wl_targets=()
for wl in "${wl_list[@]}"; do wl_targets+=("workload:$wl=${target[$wl]}"); done
python3 "$lib/compare_report.py" --write-meta "$raw/meta.json" \
  script=compare.sh profile="$profile" command="scripts/compare.sh ${argv[*]}" \
  started="$(date -Iseconds)" k="$k" hybrid="$hybrid" tool="$tool" \
  tool_version="$("$tool" --version 2>&1 | head -n 1 || true)" \
  connections="$connections" duration_s="$duration" rounds="$rounds" warmup_s="$warmup" \
  server_cpus="$server_cpus" load_cpus="$load_cpus" nproc="$ncpu" kernel="$(uname -r)" \
  cpu_model="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//' || true)" \
  git="$(git describe --always --dirty 2>/dev/null || true)" binary="$bin" "${wl_targets[@]}"

total=$((rounds * ${#wl_list[@]} * ${#modes[@]}))
per_run=$((duration + 1))
echo "compare.sh: $tool, $connections connections, ${duration}s x $rounds rounds, K=$k" \
  "(process ${k}x1, thread 1x$k${hybrid:+, hybrid $hybrid})"
echo "  workloads: ${wl_list[*]}"
echo "  server cpus: ${server_cpus:-any}; load cpus: ${load_cpus:-any}; output: $out"
echo "  $total measured runs, about $(fmt_secs $((total * per_run + warmup * ${#wl_list[@]} * ${#modes[@]})))"

if [ "$warmup" -gt 0 ]; then
  for name in "${modes[@]}"; do
    for wl in "${wl_list[@]}"; do
      echo "  warm-up: $wl on $name (${warmup}s)"
      load "$name" "$wl" "$warmup" "$raw/warmup.$wl.$name.out"
    done
    check_server "$name"
  done
fi

printf 'round\tworkload\tmode\tprefix\tstart_ms\tend_ms\n' > "$raw/runs.tsv"
i=0
for round in $(seq 1 "$rounds"); do
  for wl in "${wl_list[@]}"; do
    for name in "${modes[@]}"; do
      i=$((i + 1))
      printf '  [%*d/%d] round %d/%d  %-9s  %-7s  (%d left, ~%s)\n' "${#total}" "$i" "$total" \
        "$round" "$rounds" "$wl" "$name" $((total - i)) "$(fmt_secs $(((total - i + 1) * per_run)))"
      prefix="$wl.$name.r$round"
      python3 "$lib/status_sampler.py" snapshot "${port[$name]}" "$raw/$prefix.before.json"
      "${pin_load[@]}" python3 "$lib/status_sampler.py" sample "${port[$name]}" "$raw/$prefix.samples.jsonl" \
        --interval 0.5 --request-timeout 2 --max-seconds $((duration + 30)) &
      sampler=$!
      bg_pids=("$sampler")
      # Its keep-alive connection must exist before the load: a saturated
      # thread-mode worker stops accepting new connections.
      for _ in $(seq 1 100); do grep -q '"ok":true' "$raw/$prefix.samples.jsonl" 2>/dev/null && break; sleep 0.02; done
      start_ms=$(date +%s%3N)
      load "$name" "$wl" "$duration" "$raw/$prefix.out"
      end_ms=$(date +%s%3N)
      kill -TERM "$sampler" 2>/dev/null || true
      wait "$sampler" || true
      bg_pids=()
      python3 "$lib/status_sampler.py" snapshot "${port[$name]}" "$raw/$prefix.after.json"
      printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$wl" "$name" "$prefix" "$start_ms" "$end_ms" >> "$raw/runs.tsv"
      check_server "$name"
    done
  done
done

# Stop the servers gracefully now so their logs are complete in raw/.
for name in "${modes[@]}"; do stop_pid "${master[$name]}" TERM; done
strict=()
[ "$profile" = smoke ] && strict=(--strict)
python3 "$lib/compare_report.py" "$out" "${strict[@]}"
