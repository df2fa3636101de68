#!/usr/bin/env bash
# System calls per request of one server under keep-alive load: what
# issue 12 asks for before and after each speed change.
#
#   scripts/syscalls.sh [--server NAME] [--file-size 1k|1m|BYTES]
#                       [--duration SECS] [--connections N] [--workers N]
#                       [--threads N] [--no-strace]
#
# NAME is one of bench.sh's rows: process (default), thread, process-log,
# nginx, lighttpd, lighttpd-fresh, floor, set up exactly as bench.sh sets them up (same
# configs, server on the last CPU, wrk on the others), serving one file
# (1 KiB by default) to `wrk -t2 -c64` for 3 s (--duration).
#
# Two passes, each after a 1 s warm-up:
# 1. untraced, under `perf stat` (if perf is installed and allowed):
#    system calls and context switches per request, and the workers' CPU
#    time per request (user and system, from /proc); perf counts at the
#    tracepoint, so the timing (and so the batching: events per
#    epoll_wait, EAGAINs) is nearly the server's own. The same for wrk
#    (the client side): where wrk uses more of its CPU than the server of
#    its own, the client is the bottleneck, and what a server changes is
#    the work it leaves the client (how its bytes arrive);
# 2. `strace -c -f` attached to every worker process (all threads),
#    detached when wrk ends: the calls by name, divided by the requests
#    wrk completed in that window. strace slows each call down a lot, so
#    a traced server batches more than a free one (fewer epoll_wait and
#    EAGAIN per request): pass 1 is the truer total, pass 2 the breakdown.
# Traffic goes to 127.0.0.1 only; everything runs for a bounded time.
set -euo pipefail

server=process file_size=1k duration=3 connections=64 workers=2 threads=4 use_strace=1
while [ $# -gt 0 ]; do
  case "$1" in
    --server) server=$2; shift 2 ;;
    --file-size) file_size=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --connections) connections=$2; shift 2 ;;
    --workers) workers=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --no-strace) use_strace=0; shift ;;
    -h|--help) sed -n '2,28p' "$0"; exit 0 ;;
    *) echo "syscalls.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
case "$server" in
  process|thread|process-log|floor) ;;
  nginx|lighttpd*) command -v "${server%-fresh}" >/dev/null ||
    { echo "syscalls.sh: ${server%-fresh} is not installed" >&2; exit 2; } ;;
  *) echo "syscalls.sh: --server: one of process, thread, process-log, nginx, lighttpd, lighttpd-fresh, floor" >&2; exit 2 ;;
esac
command -v wrk >/dev/null || { echo "syscalls.sh: needs wrk" >&2; exit 2; }
if [ "$use_strace" = 1 ]; then
  command -v strace >/dev/null || { echo "syscalls.sh: needs strace (or --no-strace)" >&2; exit 2; }
fi
if [[ "$file_size" =~ ^([0-9]+)([kKmM]?)$ ]]; then
  case "${BASH_REMATCH[2]}" in
    k|K) file_bytes=$((10#${BASH_REMATCH[1]} * 1024)) ;;
    m|M) file_bytes=$((10#${BASH_REMATCH[1]} * 1024 * 1024)) ;;
    *) file_bytes=$((10#${BASH_REMATCH[1]})) ;;
  esac
fi
[ "${file_bytes:-0}" -gt 0 ] || { echo "syscalls.sh: bad --file-size '$file_size'" >&2; exit 2; }
file_name="$(echo "$file_size" | tr 'KM' 'km').txt"

cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/common.sh
. scripts/lib/common.sh
ncpu=$(nproc)
pin_server=() pin_load=()
if [ "$ncpu" -ge 2 ]; then
  pin_server=(taskset -c $((ncpu - 1)))
  pin_load=(taskset -c "0-$((ncpu - 2))")
fi

cargo build --release --quiet
[ "$server" = floor ] && cargo build --release --quiet --example floor
work=$(mktemp -d)
root_pid=""
cleanup() {
  if [ -n "$root_pid" ]; then
    if [ "${server%-fresh}" = lighttpd ]; then kill -TERM "$root_pid" 2>/dev/null || true
    else kill -QUIT "$root_pid" 2>/dev/null || true; fi
  fi
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/site"
chmod 755 "$work" "$work/site"
make_test_file "$work/site/$file_name" "$file_bytes"

port=$(free_port)

case "$server" in
  process|thread|process-log)
    log=false
    [ "$server" = process-log ] && log=true
    printf 'access_log = %s\n' "$log" > "$work/forkpool.toml"
    mode=(--mode process --workers "$workers")
    [ "$server" = thread ] && mode=(--mode thread --workers 1 --threads "$threads")
    # The access log (process-log) goes to a regular file, as in bench.sh.
    RUST_LOG=info "${pin_server[@]}" target/release/forkpool "$work/site" --config "$work/forkpool.toml" \
      --listen "127.0.0.1:$port" "${mode[@]}" > /dev/null 2> "$work/err" &
    root_pid=$!
    ;;
  floor)
    "${pin_server[@]}" target/release/examples/floor --listen "127.0.0.1:$port" --workers "$workers" \
      --body-bytes "$file_bytes" > /dev/null 2> "$work/err" &
    root_pid=$!
    ;;
  nginx)
    write_nginx_conf "$work/nginx.conf" "$workers" "$port" "$work/nginx.pid" "$work/err" "$work/site"
    "${pin_server[@]}" nginx -c "$work/nginx.conf" -p "$work" &
    root_pid=$!
    ;;
  lighttpd|lighttpd-fresh)
    write_lighttpd_conf "$work/lighttpd.conf" "$workers" "$port" "$work/lighttpd.pid" "$work/err" "$work/site"
    if [ "$server" = lighttpd-fresh ]; then
      echo 'server.stat-cache-engine = "disable"' >> "$work/lighttpd.conf"
    fi
    # Its own session: lighttpd's master signals its whole process group.
    "${pin_server[@]}" setsid lighttpd -D -f "$work/lighttpd.conf" > /dev/null 2>> "$work/err" &
    ;;
esac
wait_port "$server" "$port" "$work/err"
[ "${server%-fresh}" = lighttpd ] && root_pid=$(cat "$work/lighttpd.pid")
# The workers: the master's children (forkpool, nginx, lighttpd and floor
# masters never serve).
workers_pids=$(cat /proc/"$root_pid"/task/*/children)
[ -n "$workers_pids" ] || { echo "syscalls.sh: no worker processes under $root_pid" >&2; exit 1; }

url="http://127.0.0.1:$port/$file_name"
# cpu_ticks: "USER SYSTEM" clock ticks used so far by the workers.
cpu_ticks() {
  for pid in $workers_pids; do sed 's/.*) //' "/proc/$pid/stat"; done |
    awk '{ u += $12; s += $13 } END { print u + 0, s + 0 }'
}
requests() { sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' "$1"; }

echo "syscalls.sh: $server, $file_size file, wrk -t2 -c$connections -d${duration}s; workers: $(echo $workers_pids)"
"${pin_load[@]}" wrk -t1 -c 8 -d 1s "$url" > /dev/null

# Pass 1: untraced, counted by perf at the tracepoints.
pids_csv=$(echo $workers_pids | tr ' ' ,)
read -r user0 sys0 <<< "$(cpu_ticks)"
started=$(date +%s.%N)
events=raw_syscalls:sys_enter,context-switches,task-clock
if command -v perf >/dev/null && perf stat -e raw_syscalls:sys_enter -- true >/dev/null 2>&1; then
  perf stat -x, -e "$events" -p "$pids_csv" -o "$work/perf" &
  perf_pid=$!
  sleep 0.2
  "${pin_load[@]}" perf stat -x, -e "$events" -o "$work/perf.client" -- \
    wrk -t2 -c "$connections" -d "${duration}s" "$url" > "$work/wrk1"
  kill -INT "$perf_pid"; wait "$perf_pid" || true
else
  echo "  (perf unavailable: pass 1 gives CPU time only)"
  : > "$work/perf"; : > "$work/perf.client"
  "${pin_load[@]}" wrk -t2 -c "$connections" -d "${duration}s" "$url" > "$work/wrk1"
fi
read -r user1 sys1 <<< "$(cpu_ticks)"
wall=$(echo "$(date +%s.%N) - $started" | bc)
python3 - "$work" "$(requests "$work/wrk1")" "$((user1 - user0))" "$((sys1 - sys0))" "$(getconf CLK_TCK)" \
  "$(sed -n 's/^Requests\/sec: *//p' "$work/wrk1")" "$wall" <<'PY'
import sys
work, n, user, system, hz, rps, wall = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6]), float(sys.argv[7])
def counts(path):
    found = {}
    for line in open(path):
        parts = line.strip().split(",")
        if len(parts) > 2 and parts[0].replace(".", "").isdigit():
            found[parts[2]] = float(parts[0])
    return found
server, client = counts(f"{work}/perf"), counts(f"{work}/perf.client")
print(f"\npass 1 (untraced): {n:,} requests, {rps:,.0f} req/s")
print(f"  {'per request':<24} {'workers':>10} {'wrk':>10}")
for event, label in (("raw_syscalls:sys_enter", "system calls"), ("context-switches", "context switches")):
    if event in server:
        print(f"  {label:<24} {server[event] / n:>10.3f} {client.get(event, 0) / n:>10.3f}")
cpu_us = (user + system) * 1e6 / hz / n
wrk_us = client.get("task-clock", 0) * 1e3 / n  # task-clock is in msec
print(f"  {'CPU time, us':<24} {cpu_us:>10.2f} {wrk_us:>10.2f}")
if user + system:
    print(f"  {'  of which user':<24} {100 * user / (user + system):>9.0f}%")
print(f"  {'CPU busy (of one core)':<24} {(user + system) / hz / wall:>9.0%} {client.get('task-clock', 0) / 1e3 / wall:>9.0%}")
PY

[ "$use_strace" = 1 ] || exit 0
# Pass 2: strace -c on every worker (all threads), for the breakdown.
strace_args=()
for pid in $workers_pids; do strace_args+=(-p "$pid"); done
timeout $((duration + 20)) strace -c -f -o "$work/strace" "${strace_args[@]}" 2> "$work/strace.err" &
strace_pid=$!
sleep 0.5
"${pin_load[@]}" wrk -t2 -c "$connections" -d "${duration}s" "$url" > "$work/wrk2"
kill -INT "$strace_pid" 2>/dev/null || true
wait "$strace_pid" || true
python3 - "$work/strace" "$(requests "$work/wrk2")" "$(sed -n 's/^Requests\/sec: *//p' "$work/wrk2")" <<'PY'
import re, sys
path, n, rps = sys.argv[1], int(sys.argv[2]), sys.argv[3]
rows = []
for line in open(path):
    m = re.match(r"\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(\d+)?\s*(\w+)\s*$", line)
    if m and m.group(3) != "total":
        rows.append((m.group(3), int(m.group(1)), int(m.group(2) or 0)))
rows.sort(key=lambda r: -r[1])
print(f"\npass 2 (strace -c -f on every worker): {n:,} requests, {float(rps):,.0f} req/s while traced")
print(f"  {'syscall':<16} {'calls':>10} {'errors':>9} {'per request':>12} {'errors/req':>11}")
for name, calls, errors in rows:
    print(f"  {name:<16} {calls:>10,} {errors:>9,} {calls / n:>12.3f} {errors / n:>11.3f}")
total = sum(r[1] for r in rows)
print(f"  {'total':<16} {total:>10,} {sum(r[2] for r in rows):>9,} {total / n:>12.3f}")
PY
