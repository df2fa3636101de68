#!/usr/bin/env bash
# Throughput benchmark: a 1 KiB static file, forkpool in each architecture
# (and nginx, if installed) measured in ONE run, rounds interleaved
# (A, B, C, A, B, C, ...), medians reported, so the ratios survive a noisy
# shared machine. Server(s) and load generator are pinned to different cores.
#
#   scripts/bench.sh [--duration SECS] [--rounds N] [--connections N]
#                    [--workers N] [--threads N] [--pool-workers N]
#                    [--tool wrk|oha] [--server-cpus LIST] [--load-cpus LIST]
#                    [--baseline BIN]
#
# Defaults: 5 s x 5 rounds, 64 connections; process mode with 2 workers
# (shared accept, and reuseport), thread-loops with 1 worker x 2 loops (the
# controlled pair of process mode: same loop, one address space), thread
# mode with 1 worker x 4 threads, nginx with 2 workers. Each forkpool row
# also gives the accept fairness (Jain's index over workers, or over loops
# in thread-loops, of the connections accepted in all rounds). Traffic goes
# to 127.0.0.1 only. Prints a table; writes nothing outside a temp dir.
# --baseline BIN adds the same two forkpool configurations run from another
# build (say, the last release of main), interleaved with the others, so a
# change is measured against its base in one run.
set -euo pipefail

duration=5 rounds=5 connections=64 workers=2 threads=4 pool_workers=1
tool="" server_cpus="" load_cpus="" baseline=""
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) duration=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --connections) connections=$2; shift 2 ;;
    --workers) workers=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --pool-workers) pool_workers=$2; shift 2 ;;
    --tool) tool=$2; shift 2 ;;
    --server-cpus) server_cpus=$2; shift 2 ;;
    --load-cpus) load_cpus=$2; shift 2 ;;
    --baseline) baseline=$2; shift 2 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "bench.sh: unknown option $1" >&2; exit 2 ;;
  esac
done

cd "$(dirname "$0")/.."
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

cargo build --release --quiet
bin=target/release/forkpool
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -QUIT "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/site"
# nginx workers run as an unprivileged user: let them read the site.
chmod 755 "$work" "$work/site"
head -c 1024 /dev/urandom | base64 -w 0 | head -c 1024 > "$work/site/1k.txt"
cat > "$work/forkpool.toml" <<EOF
# Access logging costs a write per request; nginx's is off below too.
access_log = false
EOF

# start_forkpool NAME ARGS...: starts it, records NAME=PORT in $work/ports.
# FORKPOOL_BIN overrides the binary (the baseline's).
start_forkpool() {
  local name=$1; shift
  local bin=${FORKPOOL_BIN:-$bin}
  # Created before the server starts, so the readiness poll can't race it.
  : > "$work/$name.out"
  "${pin_server[@]}" "$bin" "$work/site" --config "$work/forkpool.toml" --listen 127.0.0.1:0 "$@" \
    > "$work/$name.out" 2> "$work/$name.err" &
  pids+=($!)
  local port="" deadline=$((SECONDS + 10))
  while [ -z "$port" ]; do
    port=$(sed -n 's#^listening on http://127.0.0.1:\([0-9]*\)$#\1#p' "$work/$name.out")
    [ $SECONDS -lt $deadline ] || { echo "bench.sh: $name did not start:"; cat "$work/$name.err"; exit 1; } >&2
    [ -n "$port" ] || sleep 0.05
  done
  echo "$name $port" >> "$work/ports"
}

start_nginx() {
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  cat > "$work/nginx.conf" <<EOF
worker_processes $workers;
daemon off;
pid $work/nginx.pid;
error_log $work/nginx.err;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  sendfile on;
  server {
    listen 127.0.0.1:$port;
    root $work/site;
  }
}
EOF
  "${pin_server[@]}" nginx -c "$work/nginx.conf" -p "$work" &
  pids+=($!)
  local deadline=$((SECONDS + 10))
  until (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; do
    [ $SECONDS -lt $deadline ] || { echo "bench.sh: nginx did not start" >&2; cat "$work/nginx.err" >&2; exit 1; }
    sleep 0.05
  done
  echo "nginx $port" >> "$work/ports"
}

start_forkpool process --mode process --workers "$workers"
start_forkpool reuseport --mode process --workers "$workers" --accept reuseport
start_forkpool loops --mode thread-loops --workers 1 --threads "$workers"
start_forkpool thread --mode thread --workers "$pool_workers" --threads "$threads"
if [ -n "$baseline" ]; then
  FORKPOOL_BIN=$baseline start_forkpool base-process --mode process --workers "$workers"
  FORKPOOL_BIN=$baseline start_forkpool base-thread --mode thread --workers "$pool_workers" --threads "$threads"
fi
if command -v nginx >/dev/null; then start_nginx; fi

# load NAME PORT ROUND: one measurement, raw output kept for parsing.
load() {
  local url="http://127.0.0.1:$2/1k.txt" out="$work/$1.$3.$tool"
  if [ "$tool" = wrk ]; then
    "${pin_load[@]}" wrk -t2 -c "$connections" -d "${duration}s" --latency "$url" > "$out"
  else
    "${pin_load[@]}" oha --no-tui -c "$connections" -z "${duration}s" --output-format json "$url" > "$out"
  fi
}

echo "forkpool bench: 1 KiB file, $tool, $connections connections, ${duration}s x $rounds rounds"
echo "  process: $workers worker(s) (shared, reuseport); loops: 1 worker x $workers loops; thread: $pool_workers worker(s) x $threads threads; nginx: $workers workers"
echo "  server cpus: ${server_cpus:-any}; load cpus: ${load_cpus:-any}"
# Warm-up: one short unmeasured run each (page cache, lazy allocations).
while read -r name port; do
  if [ "$tool" = wrk ]; then "${pin_load[@]}" wrk -t1 -c 8 -d 1s "http://127.0.0.1:$port/1k.txt" >/dev/null
  else "${pin_load[@]}" oha --no-tui -c 8 -z 1s "http://127.0.0.1:$port/1k.txt" >/dev/null; fi
done < "$work/ports"
for round in $(seq 1 "$rounds"); do
  while read -r name port; do
    echo "  round $round/$rounds: $name" >&2
    load "$name" "$port" "$round"
  done < "$work/ports"
done

# Accept fairness of each forkpool server, from its /-/status.
while read -r name port; do
  [ "$name" = nginx ] && continue
  curl -s --max-time 5 "http://127.0.0.1:$port/-/status" > "$work/$name.status" || true
done < "$work/ports"

python3 - "$work" "$tool" <<'PY'
import json, re, statistics, sys, glob, os
work, tool = sys.argv[1], sys.argv[2]
def ms(text):
    value, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
def parse(path):
    text = open(path).read()
    if tool == "oha":
        data = json.loads(text)
        return (data["summary"]["requestsPerSec"], data["latencyPercentiles"]["p50"] * 1000,
                data["latencyPercentiles"]["p99"] * 1000, 0)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    p50 = ms(re.search(r"^\s+50%\s+(\S+)", text, re.M).group(1))
    p99 = ms(re.search(r"^\s+99%\s+(\S+)", text, re.M).group(1))
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", text))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    return rps, p50, p99, errors + (int(non2xx.group(1)) if non2xx else 0)
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
print(f"{'server':<13} {'req/s (median)':>15} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'fair':>5}   rounds req/s")
for name in names:
    rps, p50, p99, err, all_rps = rows[name]
    print(f"{name:<13} {rps:>15,.0f} {p50:>8.2f} {p99:>8.2f} {err:>7.0f} {fairness(name):>5}   " + " ".join(f"{r:,.0f}" for r in all_rps))
print()
def ratio(a, b):
    if a in rows and b in rows:
        print(f"{a}/{b} throughput ratio: {rows[a][0] / rows[b][0]:.2f}")
ratio("process", "nginx")
ratio("thread", "nginx")
ratio("thread", "process")
ratio("loops", "process")
ratio("reuseport", "process")
ratio("process", "base-process")
ratio("thread", "base-thread")
PY
