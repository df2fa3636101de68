#!/usr/bin/env bash
# The lab: the classic processes-versus-threads claims as one controlled
# experiment, with a verdict per claim that is only as strong as the spread
# between rounds allows (issue 10).
#
#   scripts/lab.sh [--quick | --smoke] [--bin PATH] [--out DIR]
#                  [--phases LIST] [--no-install] [--no-pin]
#                  [--server-cpus LIST] [--load-cpus LIST]
#
# Phases (--phases takes a comma list; all by default):
#   sweep        K workers or threads, K in {1,2,4,8,16,32,64} ({2,8,32} with
#                --quick), closed-loop wrk at 64 connections on static-1k,
#                shared?ops=10000 (and the tabs.lua mix in the full run):
#                req/s, CPU us and context switches (voluntary, involuntary)
#                per request, total PSS, PSS per worker or thread, USS, and
#                per-worker fairness (Jain's index)
#   concurrency  16, 64, 256 and 1024 connections at K = 8: req/s and p99
#   latency      open loop at 50 %, 80 % and 95 % of each configuration's
#                maximum (oha -q RATE --latency-correction, so coordinated
#                omission is corrected): p50, p99, p99.9, max
#   switch       cargo's examples/switch_cost: ns per switch between two
#                processes and two threads pinned to one CPU (pipe, futex,
#                eventfd; working sets 0 to 8 MiB)
#   crash        K = 4, --accept reuseport, abort segv hang leak panic under a
#                paced keep-alive load: connections lost against 1/K,
#                failed requests, time until a replacement serves, throughput
#                timeline; plus abort with --accept shared
#
# Configurations (every phase runs each one it can):
#   process       --mode process --workers K
#   thread        --mode thread --workers 1 --threads K     (gthread, Apache event)
#   thread-loops  --mode thread-loops --workers 1 --threads K (each thread its
#                 own event loop: with process, the controlled pair)
#   prefork       --mode process --workers K, max_connections = 1 (Apache
#                 prefork; full run only)
# A configuration or flag this forkpool binary does not have (thread-loops,
# --accept) is skipped with a line on stderr and a note in the report.
#
# Profiles:
#   (none)   3 rounds x 5 s, every K, 4 configurations, 3 crash repeats:
#            about 55 minutes on 2 cores, plus the release build
#   --quick  3 rounds x 3 s, K in {2,8,32}, 1 crash repeat: about 13
#            minutes, plus the release build
#   --smoke  for CI with the debug build (--bin target/debug/forkpool):
#            K in {2,4}, 2 rounds x 1 s, 16 and 64 connections, one rate,
#            the abort fault only, switch_cost built in debug: about 1
#            minute once built; exit 1 when a run failed, served nothing,
#            or an output is missing (not for slow numbers: a debug
#            build's are)
#
# Rounds are interleaved (every configuration once per round, a fresh server
# each time, one server at a time so PSS shares no pages across servers) and
# reported as the median with the min-max spread; a difference is called
# only where the ranges don't overlap and the medians differ by 5 % or more.
#
# Pinning: the server on the last CPU, the load generator (wrk, oha, the
# crash client) and the status sampler on the others (taskset), stated in
# the report. Pass --no-pin or CPU lists to change. Traffic goes to
# 127.0.0.1 only; every run is bounded in time; everything started here is
# stopped on exit or Ctrl+C.
#
# Tools: wrk, gnuplot (gnuplot-nox), python3, taskset; oha for the latency
# phase. Missing ones are installed (apt-get, `cargo install oha --locked`,
# about 5 minutes) unless --no-install; --smoke does not build oha (CI's time)
# and explains the latency phase it skips instead.
#
# --bin PATH uses that forkpool binary instead of building and using
# target/release/forkpool. Writes results/<timestamp>-lab/ (or --out DIR):
# report.md (a section per claim with its chart, then every phase),
# results.json (sweep, concurrency, latency, switch_cost, crash, claims),
# *.png charts (gnuplot) and raw/ (every tool output and server log).
set -euo pipefail
export PYTHONDONTWRITEBYTECODE=1  # no __pycache__ in scripts/lib

usage() { sed -n '2,/^set -euo/p' "$0" | sed -n 's/^# \{0,1\}//p'; }
die() { echo "lab.sh: $*" >&2; exit 2; }

# shellcheck source=scripts/lib/common.sh
. "$(dirname "$0")/lib/common.sh"

argv=("$@")
profile=full phases="sweep,concurrency,latency,switch,crash" install=1
server_cpus="" load_cpus="" pin=1 bin="" out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) profile=quick; shift ;;
    --smoke) profile=smoke; shift ;;
    --phases) phases=$2; shift 2 ;;
    --no-install) install=0; shift ;;
    *) shared_option "$@" || die "unknown option $1 (see --help)"; shift "$consumed" ;;
  esac
done
IFS=, read -r -a phase_list <<< "$phases"
[ "${#phase_list[@]}" -gt 0 ] || die "--phases is empty"
for p in "${phase_list[@]}"; do
  case "$p" in sweep|concurrency|latency|switch|crash) ;;
    *) die "unknown phase '$p' (sweep concurrency latency switch crash)" ;; esac
done
[ -z "$bin" ] || bin=$(realpath "$bin" 2>/dev/null || echo "$bin")
[ -z "$out" ] || out=$(realpath -m "$out")

cd "$(dirname "$0")/.."
root=$(pwd)
lib="$root/scripts/lib"

# --- tools -------------------------------------------------------------------
ensure_tools "$install" python3 wrk gnuplot taskset ||
  die "missing tools (above); install them, or drop --no-install"
need_oha=0
[[ ,$phases, == *,latency,* ]] && need_oha=1
if [ "$need_oha" = 1 ] && ! command -v oha >/dev/null; then
  if [ "$profile" = smoke ] || [ "$install" = 0 ]; then
    echo "lab.sh: oha is not installed (cargo install oha --locked): the latency phase is skipped" >&2
  else
    ensure_tools 1 oha ||
      echo "lab.sh: no oha: the latency phase is skipped (the report says so)" >&2
  fi
fi

# --- binary, pinning, output -------------------------------------------------
setup_pinning
setup_output lab
help=$("$bin" --help 2>&1 || true)
thread_loops=0 accept=0
grep -q 'thread-loops' <<< "$help" && thread_loops=1
grep -q -- '--accept' <<< "$help" && accept=1
[ "$thread_loops" = 1 ] ||
  echo "lab.sh: $bin has no --mode thread-loops: the thread-loops configuration is skipped" >&2
[ "$accept" = 1 ] ||
  echo "lab.sh: $bin has no --accept flag: every run uses its one shared listening socket (no reuseport)" >&2

python3 "$lib/compare_report.py" --write-meta "$raw/meta.json" \
  script=lab.sh profile="$profile" command="scripts/lab.sh ${argv[*]}" phases="$phases" \
  started="$(date -Iseconds)" binary="$bin" thread_loops="$thread_loops" accept="$accept" \
  server_cpus="$server_cpus" load_cpus="$load_cpus" nproc="$ncpu" kernel="$(uname -r)" \
  cpu_model="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//' || true)" \
  git="$(git describe --always --dirty 2>/dev/null || true)" \
  wrk_version="$(wrk --version 2>&1 | head -n 1 || true)" \
  oha_version="$(command -v oha >/dev/null && oha --version 2>&1 | head -n 1 || true)" \
  gnuplot_version="$(gnuplot --version 2>&1 || true)"

# --- run, then report ----------------------------------------------------------
driver=""
cleanup() {
  [ -z "$driver" ] || stop_pid "$driver" TERM
  wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'echo "lab.sh: interrupted" >&2; exit 130' INT TERM

echo "lab.sh: $profile run, phases $phases; server on CPU ${server_cpus:-any}," \
  "load on CPU ${load_cpus:-any}; output $out" >&2
python3 "$lib/lab_run.py" "$out" &
driver=$!
status=0
wait "$driver" || status=$?
driver=""
[ "$status" -le 1 ] || die "the run stopped (exit $status); what it recorded is in $raw"
strict=()
[ "$profile" = smoke ] && strict=(--strict)
python3 "$lib/lab_report.py" "$out" "${strict[@]}"
