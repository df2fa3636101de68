#!/usr/bin/env bash
# Throughput benchmark: one static file (1 KiB by default) from forkpool in
# each architecture, from nginx and lighttpd (if installed) and from a floor
# server, measured in ONE run, rounds interleaved (A, B, C, A, B, C, ...),
# medians reported, so the ratios survive a noisy shared machine. Servers
# and load generator are pinned to different cores, with one wrk thread
# per load core.
#
#   scripts/bench.sh [--duration SECS] [--rounds N] [--connections N]
#                    [--workers N] [--threads N] [--pool-workers N]
#                    [--file-size 1k|1m|BYTES] [--servers LIST]
#                    [--tool wrk|oha] [--server-cpus LIST] [--load-cpus LIST]
#                    [--baseline BIN]
#
# Defaults: 5 s x 5 rounds, 64 connections, a 1 KiB file. The rows (pick
# some with --servers, comma-separated, e.g. process,nginx,lighttpd,floor):
#   process      forkpool --mode process, 2 workers, shared accept, no log
#   reuseport    the same with --accept reuseport
#   loops        --mode thread-loops, 1 worker x 2 loops (the controlled
#                pair of process mode: same loop, one address space)
#   thread       --mode thread, 1 worker x 4 threads
#   process-log  process with the access log on, as users get it by default
#                (access_log = true, RUST_LOG=info); stderr, the log, goes
#                to a regular file in the temp dir, so the row pays for
#                formatting each line and for its write(2) to the page cache
#   base-process, base-loops, base-thread   only with --baseline BIN: process,
#                loops and thread
#                from another build (say, the last release of main), so a
#                change is measured against its base in the same run
#   nginx        nginx, 2 workers, access log off, sendfile on
#   lighttpd     lighttpd 1.4, server.max-worker = 2 (it is one process by
#                default; max-worker forks as many workers as the others
#                get), no access log (mod_accesslog not loaded), the
#                linux-sendfile backend, its default stat cache (which
#                serves a file replaced by rename stale for up to a second:
#                a cache forkpool's dev-server rule forbids)
#   lighttpd-fresh  the same with server.stat-cache-engine = "disable": it
#                then stats and opens every request, fresh as forkpool
#                must be (not run by default: ask for it with --servers)
#   floor        examples/floor.rs: a fixed-response epoll loop that parses
#                nothing (3 syscalls per keep-alive request), 2 workers,
#                writing a body of the file's size from memory
# Every row runs by default (nginx and lighttpd if installed, base-* with
# --baseline); --workers N changes every "2" above. --file-size 1m serves a
# 1 MiB file (the large-file target). Each forkpool row also gives the
# accept fairness (Jain's index over workers, or over loops in
# thread-loops, of the connections accepted in all rounds). "cpu us/req" is
# the CPU time (user + system, from /proc) the server's processes used per
# request: on a shared machine, where other tenants take CPU time from the
# pinned server core, it compares the servers' efficiency when req/s can't.
# The ratios issue 12's targets are about print at the end, with their
# targets, by throughput and by CPU time per request.
# Traffic goes to 127.0.0.1 only. Prints a table; writes nothing outside a
# temp dir.
set -euo pipefail

duration=5 rounds=5 connections=64 workers=2 threads=4 pool_workers=1
tool="" server_cpus="" load_cpus="" baseline="" file_size=1k servers=""
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) duration=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --connections) connections=$2; shift 2 ;;
    --workers) workers=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --pool-workers) pool_workers=$2; shift 2 ;;
    --file-size) file_size=$2; shift 2 ;;
    --servers) servers=$2; shift 2 ;;
    --tool) tool=$2; shift 2 ;;
    --server-cpus) server_cpus=$2; shift 2 ;;
    --load-cpus) load_cpus=$2; shift 2 ;;
    --baseline) baseline=$2; shift 2 ;;
    -h|--help) sed -n '2,54p' "$0"; exit 0 ;;
    *) echo "bench.sh: unknown option $1" >&2; exit 2 ;;
  esac
done

cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/common.sh
. scripts/lib/common.sh

# --file-size: 1k, 1m, 64k, or plain bytes.
if [[ "$file_size" =~ ^([0-9]+)([kKmM]?)$ ]]; then
  case "${BASH_REMATCH[2]}" in
    k|K) file_bytes=$((10#${BASH_REMATCH[1]} * 1024)) ;;
    m|M) file_bytes=$((10#${BASH_REMATCH[1]} * 1024 * 1024)) ;;
    *) file_bytes=$((10#${BASH_REMATCH[1]})) ;;
  esac
fi
[ "${file_bytes:-0}" -gt 0 ] ||
  { echo "bench.sh: --file-size: expected 1k, 1m or a number of bytes, got '$file_size'" >&2; exit 2; }
file_name="$(echo "$file_size" | tr 'KM' 'km').txt"

# --servers: which rows run; they run (and print) in the order of all_rows.
all_rows="process reuseport loops thread process-log base-process base-loops base-thread nginx lighttpd lighttpd-fresh floor"
if [ -z "$servers" ]; then
  rows="process reuseport loops thread process-log"
  if [ -n "$baseline" ]; then rows+=" base-process base-loops base-thread"; fi
  if command -v nginx >/dev/null; then rows+=" nginx"; fi
  if command -v lighttpd >/dev/null; then rows+=" lighttpd"; fi
  rows+=" floor"
else
  rows=""
  for name in ${servers//,/ }; do
    case " $all_rows " in
      *" $name "*) ;;
      *) echo "bench.sh: --servers: unknown row '$name' (rows: ${all_rows// /,})" >&2; exit 2 ;;
    esac
    case "$name" in
      base-*) [ -n "$baseline" ] || { echo "bench.sh: --servers: $name needs --baseline BIN" >&2; exit 2; } ;;
      nginx|lighttpd*) command -v "${name%-fresh}" >/dev/null ||
        { echo "bench.sh: --servers: ${name%-fresh} is not installed" >&2; exit 2; } ;;
    esac
  done
  for name in $all_rows; do
    case ",$servers," in *",$name,"*) rows+="${rows:+ }$name" ;; esac
  done
fi
wants() { case " $rows " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

if [ -z "$tool" ]; then
  if command -v wrk >/dev/null; then tool=wrk
  elif command -v oha >/dev/null; then tool=oha
  else echo "bench.sh: needs wrk (apt-get install wrk) or oha (cargo install oha)" >&2; exit 2
  fi
fi
command -v "$tool" >/dev/null || { echo "bench.sh: $tool is not installed" >&2; exit 2; }

# Pinning: the last core serves, the others generate load. With one core
# nothing is pinned (and the numbers mean little).
ncpu=$(nproc)
if [ -z "$server_cpus" ] && [ "$ncpu" -ge 2 ]; then
  server_cpus=$((ncpu - 1))
  load_cpus="0-$((ncpu - 2))"
fi
pin_server=() pin_load=()
[ -n "$server_cpus" ] && pin_server=(taskset -c "$server_cpus")
[ -n "$load_cpus" ] && pin_load=(taskset -c "$load_cpus")
# One wrk thread per load core: two threads on one core take turns, and
# the client's own waiting then fills the p99 of every row alike.
load_threads=$(if [ -n "$load_cpus" ]; then
  taskset -c "$load_cpus" nproc
else
  echo $(( ncpu > 1 ? ncpu / 2 : 1 ))
fi)
# wrk wants at least one connection per thread.
load_threads=$(( load_threads < connections ? load_threads : connections ))

cargo build --release --quiet
if wants floor; then cargo build --release --quiet --example floor; fi
bin=target/release/forkpool
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -QUIT "$pid" 2>/dev/null || true; done
  # lighttpd stops on SIGTERM, its workers with it.
  for pidfile in "$work"/lighttpd*.pid; do
    if [ -s "$pidfile" ]; then kill -TERM "$(cat "$pidfile")" 2>/dev/null || true; fi
  done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/site"
# nginx workers run as an unprivileged user: let them read the site.
chmod 755 "$work" "$work/site"
make_test_file "$work/site/$file_name" "$file_bytes"
cat > "$work/forkpool.toml" <<EOF
# Access logging costs a write per request; nginx's is off below too.
access_log = false
EOF
cat > "$work/forkpool-log.toml" <<EOF
# The process-log row: the access log on, as it is by default.
access_log = true
EOF

# start_announcing NAME CMD...: starts a server that prints forkpool's
# readiness line (forkpool, the floor); records "NAME PORT PID" in
# $work/ports (PID: the server's first process, which may have children).
start_announcing() {
  local name=$1; shift
  # Created before the server starts, so the readiness poll can't race it.
  : > "$work/$name.out"
  "${pin_server[@]}" "$@" > "$work/$name.out" 2> "$work/$name.err" &
  pids+=($!)
  local port="" deadline=$((SECONDS + 10))
  while [ -z "$port" ]; do
    port=$(sed -n 's#^listening on http://127.0.0.1:\([0-9]*\)$#\1#p' "$work/$name.out")
    [ $SECONDS -lt $deadline ] || { echo "bench.sh: $name did not start:"; cat "$work/$name.err"; exit 1; } >&2
    [ -n "$port" ] || sleep 0.05
  done
  echo "$name $port $!" >> "$work/ports"
}

# start_forkpool NAME ARGS...: FORKPOOL_BIN overrides the binary (the
# baseline's), FORKPOOL_CONFIG the config file.
start_forkpool() {
  local name=$1; shift
  start_announcing "$name" "${FORKPOOL_BIN:-$bin}" "$work/site" \
    --config "${FORKPOOL_CONFIG:-$work/forkpool.toml}" --listen 127.0.0.1:0 "$@"
}


start_nginx() {
  local port
  port=$(free_port)
  write_nginx_conf "$work/nginx.conf" "$workers" "$port" "$work/nginx.pid" "$work/nginx.err" "$work/site"
  "${pin_server[@]}" nginx -c "$work/nginx.conf" -p "$work" &
  pids+=($!)
  wait_port nginx "$port" "$work/nginx.err"
  echo "nginx $port $!" >> "$work/ports"
}

# start_lighttpd NAME [CONFIG LINE]: lighttpd runs in a session of its own
# (setsid): with max-worker, its master signals its whole process group
# when it stops (kill(0, ...)), which would otherwise be this script's. It
# is stopped through its pid file.
start_lighttpd() {
  local name=$1 extra=${2:-} port
  port=$(free_port)
  write_lighttpd_conf "$work/$name.conf" "$workers" "$port" "$work/$name.pid" "$work/$name.err" "$work/site" "$extra"
  "${pin_server[@]}" setsid lighttpd -D -f "$work/$name.conf" > /dev/null 2>> "$work/$name.err" &
  wait_port "$name" "$port" "$work/$name.err"
  echo "$name $port $(cat "$work/$name.pid")" >> "$work/ports"
}

if wants process; then start_forkpool process --mode process --workers "$workers"; fi
if wants reuseport; then start_forkpool reuseport --mode process --workers "$workers" --accept reuseport; fi
if wants loops; then start_forkpool loops --mode thread-loops --workers 1 --threads "$workers"; fi
if wants thread; then start_forkpool thread --mode thread --workers "$pool_workers" --threads "$threads"; fi
if wants process-log; then
  RUST_LOG=info FORKPOOL_CONFIG=$work/forkpool-log.toml \
    start_forkpool process-log --mode process --workers "$workers"
fi
if wants base-process; then
  FORKPOOL_BIN=$baseline start_forkpool base-process --mode process --workers "$workers"
fi
if wants base-loops; then
  FORKPOOL_BIN=$baseline start_forkpool base-loops --mode thread-loops --workers 1 --threads "$workers"
fi
if wants base-thread; then
  FORKPOOL_BIN=$baseline start_forkpool base-thread --mode thread --workers "$pool_workers" --threads "$threads"
fi
if wants nginx; then start_nginx; fi
if wants lighttpd; then start_lighttpd lighttpd; fi
if wants lighttpd-fresh; then
  start_lighttpd lighttpd-fresh 'server.stat-cache-engine = "disable"'
fi
if wants floor; then
  start_announcing floor target/release/examples/floor --listen 127.0.0.1:0 \
    --workers "$workers" --body-bytes "$file_bytes"
fi

# cpu_ticks PID: user + system clock ticks used so far by PID and every
# live descendant (threads are counted in their process).
cpu_ticks() {
  local todo=("$1") all=() pid
  while [ ${#todo[@]} -gt 0 ]; do
    pid=${todo[0]} todo=("${todo[@]:1}") all+=("$pid")
    # shellcheck disable=SC2207
    todo+=($(cat /proc/"$pid"/task/*/children 2>/dev/null))
  done
  # Fields 14 and 15 of /proc/PID/stat, counted after the ") " ending comm.
  for pid in "${all[@]}"; do sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null; done |
    awk '{ ticks += $12 + $13 } END { print ticks + 0 }'
}

# load NAME PORT ROUND PID: one measurement, raw output kept for parsing,
# and the server's CPU ticks over it.
load() {
  local url="http://127.0.0.1:$2/$file_name" out="$work/$1.$3.$tool" before
  before=$(cpu_ticks "$4")
  if [ "$tool" = wrk ]; then
    "${pin_load[@]}" wrk -t "$load_threads" -c "$connections" -d "${duration}s" --latency "$url" > "$out"
  else
    "${pin_load[@]}" oha --no-tui -c "$connections" -z "${duration}s" --output-format json "$url" > "$out"
  fi
  echo $(( $(cpu_ticks "$4") - before )) > "$work/$1.$3.cpu"
}

echo "forkpool bench: $file_size file ($file_bytes bytes), $tool, $connections connections, ${duration}s x $rounds rounds"
echo "  rows: $rows"
echo "  process (and reuseport, process-log): $workers worker(s); loops: 1 worker x $workers loops;" \
  "thread: $pool_workers worker(s) x $threads threads; nginx, lighttpd, floor: $workers workers"
echo "  server cpus: ${server_cpus:-any}; load cpus: ${load_cpus:-any} (wrk -t $load_threads)"
# Warm-up: one short unmeasured run each (page cache, lazy allocations).
while read -r name port _; do
  if [ "$tool" = wrk ]; then "${pin_load[@]}" wrk -t1 -c 8 -d 1s "http://127.0.0.1:$port/$file_name" >/dev/null
  else "${pin_load[@]}" oha --no-tui -c 8 -z 1s "http://127.0.0.1:$port/$file_name" >/dev/null; fi
done < "$work/ports"
for round in $(seq 1 "$rounds"); do
  while read -r name port pid; do
    echo "  round $round/$rounds: $name" >&2
    load "$name" "$port" "$round" "$pid"
  done < "$work/ports"
done

# Accept fairness of each forkpool server, from its /-/status.
while read -r name port _; do
  case "$name" in nginx|lighttpd*|floor) continue ;; esac
  curl -s --max-time 5 "http://127.0.0.1:$port/-/status" > "$work/$name.status" || true
done < "$work/ports"

# A sanity check that the process-log row did log.
if wants process-log; then
  echo
  echo "process-log: $(grep -c '[0-9]us pid=' "$work/process-log.err" || true) access-log lines" \
    "($(du -h "$work/process-log.err" | cut -f1)) written to a regular file"
fi

python3 - "$work" "$tool" "$file_bytes" "$(getconf CLK_TCK)" "$duration" <<'PY'
import json, re, statistics, sys, glob, os
work, tool, file_bytes = sys.argv[1], sys.argv[2], int(sys.argv[3])
clk_tck, duration = int(sys.argv[4]), float(sys.argv[5])
def ms(text):
    value, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
def parse(path):
    text = open(path).read()
    ticks = int(open(path.rsplit(".", 1)[0] + ".cpu").read())
    if tool == "oha":
        data = json.loads(text)
        rps = data["summary"]["requestsPerSec"]
        return (rps, data["latencyPercentiles"]["p50"] * 1000,
                data["latencyPercentiles"]["p99"] * 1000, 0,
                ticks * 1e6 / clk_tck / max(rps * duration, 1))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    requests = int(re.search(r"(\d+) requests in", text).group(1))
    p50 = ms(re.search(r"^\s+50%\s+(\S+)", text, re.M).group(1))
    p99 = ms(re.search(r"^\s+99%\s+(\S+)", text, re.M).group(1))
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", text))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    return (rps, p50, p99, errors + (int(non2xx.group(1)) if non2xx else 0),
            ticks * 1e6 / clk_tck / max(requests, 1))
names = [line.split()[0] for line in open(os.path.join(work, "ports"))]
rows = {}
for name in names:
    runs = [parse(p) for p in sorted(glob.glob(os.path.join(work, f"{name}.*.{tool}")))]
    rows[name] = [statistics.median(col) for col in zip(*runs)] + [[r[0] for r in runs]]
print()
def fairness(name):
    try:
        status = json.load(open(os.path.join(work, f"{name}.status")))
    except (OSError, ValueError):
        return "-"
    workers = status["workers"]
    if len(workers) == 1 and workers[0].get("fairness") is not None:
        return f"{workers[0]['fairness']:.2f}"
    return f"{status['totals']['fairness']:.2f}"
print(f"{'server':<13} {'req/s (median)':>15} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'fair':>5} {'cpu us/req':>10}   rounds req/s")
for name in names:
    rps, p50, p99, err, cpu, all_rps = rows[name]
    print(f"{name:<13} {rps:>15,.0f} {p50:>8.2f} {p99:>8.2f} {err:>7.0f} {fairness(name):>5} {cpu:>10.2f}   " + " ".join(f"{r:,.0f}" for r in all_rps))
print()
# Issue 12's targets, for the file sizes it sets them for.
targets = {
    1024: {("process", "lighttpd"): 1.0, ("process", "floor"): 0.85,
           ("process-log", "process"): 0.9, ("thread", "process"): 0.6},
    1024 * 1024: {("process", "nginx"): 1.0},
}.get(file_bytes, {})
def verdict(value, target, at_least=True):
    met = value >= target if at_least else value <= target
    return f"   (target {'>=' if at_least else '<='} {target:.2f}: {'met' if met else 'NOT met'})"
def ratio(a, b):
    if a in rows and b in rows:
        value = rows[a][0] / rows[b][0]
        # The same ratio from CPU time per request: b's cost over a's.
        by_cpu = rows[b][4] / rows[a][4] if rows[a][4] > 0 else float("nan")
        target = targets.get((a, b))
        print(f"{a}/{b} throughput ratio: {value:.2f}, by CPU per request: {by_cpu:.2f}"
              + (verdict(value, target) if target else ""))
ratio("process", "lighttpd")
ratio("process", "lighttpd-fresh")
ratio("process", "floor")
ratio("process-log", "process")
ratio("process", "nginx")
ratio("thread", "process")
ratio("thread", "nginx")
ratio("loops", "process")
ratio("reuseport", "process")
ratio("lighttpd", "floor")
ratio("lighttpd-fresh", "lighttpd")
ratio("nginx", "floor")
ratio("process", "base-process")
ratio("loops", "base-loops")
ratio("thread", "base-thread")
if "process" in rows and "nginx" in rows:
    value = rows["process"][2] / rows["nginx"][2]
    print(f"process/nginx p99 ratio: {value:.2f}" + (verdict(value, 1.0, at_least=False) if targets else ""))
PY
