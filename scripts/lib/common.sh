# shellcheck shell=bash disable=SC2154,SC2034
# (SC2154/SC2034: the variables are the caller's, read and set here.)
# Shell helpers shared by scripts/compare.sh and scripts/crash-compare.sh
# (sourced, not run). Each expects `die`, `pin`, `server_cpus`, `load_cpus`,
# `bin`, `root` and `out` set by its caller's option parsing.

# setup_pinning: as scripts/bench.sh, the last CPU serves and the others
# load, unless --no-pin or CPUs were given; sets `ncpu` and the
# `pin_server` and `pin_load` command prefixes.
setup_pinning() {
  ncpu=$(nproc)
  if [ "$pin" = 1 ] && [ -z "$server_cpus" ] && [ "$ncpu" -ge 2 ]; then
    server_cpus=$((ncpu - 1))
    load_cpus="0-$((ncpu - 2))"
  fi
  [ "$pin" = 1 ] || { server_cpus=""; load_cpus=""; }
  pin_server=() pin_load=()
  [ -n "$server_cpus" ] && pin_server=(taskset -c "$server_cpus")
  [ -n "$load_cpus" ] && pin_load=(taskset -c "$load_cpus")
  return 0
}

# setup_output KIND: builds forkpool unless --bin was given, and creates
# `$out` (default results/<timestamp>-KIND) with its raw/ folder; sets
# `raw` and `stamp`.
setup_output() {
  if [ -z "$bin" ]; then
    cargo build --release --quiet
    bin="$root/target/release/forkpool"
  fi
  [ -x "$bin" ] || die "no executable at $bin"
  stamp=$(date +%Y%m%d-%H%M%S)
  [ -n "$out" ] || out="$root/results/$stamp-$1"
  [ -e "$out" ] && die "$out already exists"
  mkdir -p "$out/raw"
  raw="$out/raw"
}

# stop_pid PID SIGNAL: signal, wait up to 3 s, then SIGKILL.
stop_pid() {
  local pid=$1 i
  kill -"$2" "$pid" 2>/dev/null || return 0
  for i in $(seq 1 60); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  kill -KILL "$pid" 2>/dev/null || true
}
