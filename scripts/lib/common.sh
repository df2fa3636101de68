# shellcheck shell=bash disable=SC2154,SC2034
# (SC2154/SC2034: the variables are the caller's, read and set here.)
# Shell helpers shared by the scripts in scripts/ (sourced, not run).
# compare.sh, crash-compare.sh and lab.sh use the option and pinning helpers,
# which expect `die`, `pin`, `server_cpus`, `load_cpus`, `bin`, `root` and
# `out` set by their option parsing; bench.sh and syscalls.sh use the nginx
# and lighttpd config writers, which take everything as arguments.

# shared_option ARGS...: the options every script here takes: --server-cpus
# LIST, --load-cpus LIST, --no-pin, --bin PATH, --out DIR and -h/--help
# (prints `usage`, exits). Sets `consumed` to how many arguments it used, for
# the caller's `shift`; returns 1 when $1 is none of them.
shared_option() {
  case "$1" in
    --server-cpus) server_cpus=$2; consumed=2 ;;
    --load-cpus) load_cpus=$2; consumed=2 ;;
    --no-pin) pin=0; consumed=1 ;;
    --bin) bin=$2; consumed=2 ;;
    --out) out=$2; consumed=2 ;;
    -h|--help) usage; exit 0 ;;
    *) return 1 ;;
  esac
}

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

# ensure_tools INSTALL TOOL...: checks that each TOOL (wrk, gnuplot, oha,
# python3, taskset) is on PATH; with INSTALL=1 installs the missing ones
# first (apt-get for wrk, gnuplot-nox, python3 and util-linux, as root or
# through `sudo -n`; `cargo install oha --locked` for oha, about 5 minutes).
# Prints one line per tool still missing, saying how to get it; returns 1
# if any is.
ensure_tools() {
  local install=$1 tool missing=() apt=() sudo=()
  shift
  # Where `cargo install` puts oha, whether or not PATH has it.
  case ":$PATH:" in *":${CARGO_HOME:-$HOME/.cargo}/bin:"*) ;;
    *) export PATH="$PATH:${CARGO_HOME:-$HOME/.cargo}/bin" ;; esac
  for tool in "$@"; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
  done
  [ "${#missing[@]}" -gt 0 ] || return 0
  if [ "$install" = 1 ]; then
    [ "$(id -u)" = 0 ] || sudo=(sudo -n)
    for tool in "${missing[@]}"; do
      case "$tool" in
        wrk) apt+=(wrk) ;;
        gnuplot) apt+=(gnuplot-nox) ;;
        python3) apt+=(python3) ;;
        taskset) apt+=(util-linux) ;;
        oha)
          echo "installing oha: cargo install oha --locked (about 5 minutes)" >&2
          cargo install oha --locked >&2 || echo "cargo install oha failed" >&2 ;;
      esac
    done
    if [ "${#apt[@]}" -gt 0 ] && command -v apt-get >/dev/null; then
      echo "installing ${apt[*]} with apt-get" >&2
      "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${apt[@]}" >&2 ||
        { "${sudo[@]}" apt-get update -q >&2 &&
          "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${apt[@]}" >&2; } ||
        echo "apt-get could not install ${apt[*]}" >&2
    fi
  fi
  local left=1
  for tool in "${missing[@]}"; do
    command -v "$tool" >/dev/null 2>&1 && continue
    left=0
    case "$tool" in
      oha) echo "missing: oha (cargo install oha --locked)" >&2 ;;
      gnuplot) echo "missing: gnuplot (apt-get install -y gnuplot-nox)" >&2 ;;
      taskset) echo "missing: taskset (apt-get install -y util-linux)" >&2 ;;
      *) echo "missing: $tool (apt-get install -y $tool)" >&2 ;;
    esac
  done
  [ "$left" = 1 ]
}

# write_nginx_conf FILE WORKERS PORT PID_FILE ERROR_LOG ROOT: nginx serving
# ROOT on 127.0.0.1:PORT as the benchmarks compare it (no access log,
# sendfile on, keep-alive without a request limit, as forkpool's).
write_nginx_conf() {
  cat > "$1" <<CONF
worker_processes $2;
daemon off;
pid $4;
error_log $5;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  sendfile on;
  server {
    listen 127.0.0.1:$3;
    root $6;
  }
}
CONF
}

# write_lighttpd_conf FILE WORKERS PORT PID_FILE ERROR_LOG ROOT [EXTRA]:
# lighttpd 1.4 likewise. It is one process by default: max-worker gives it
# as many workers as the others get. No mod_accesslog (no access log);
# max-keep-alive-requests as nginx's keepalive_requests. EXTRA is appended
# (e.g. the stat-cache setting of the "fresh" row).
write_lighttpd_conf() {
  cat > "$1" <<CONF
server.document-root = "$6"
server.bind = "127.0.0.1"
server.port = $3
server.pid-file = "$4"
server.errorlog = "$5"
server.max-worker = $2
server.network-backend = "linux-sendfile"
server.max-keep-alive-requests = 1000000
mimetype.assign = (".txt" => "text/plain")
${7:-}
CONF
}

# make_test_file PATH BYTES: a file of exactly BYTES of text (base64 of
# random bytes), written without a pipe that could be cut short (a SIGPIPE
# is fatal under pipefail).
make_test_file() {
  head -c $(($2 * 3 / 4 + 3)) /dev/urandom | base64 -w 0 > "$1"
  truncate -s "$2" "$1"
}

# free_port: a port free on 127.0.0.1 right now.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_port NAME PORT ERROR_LOG: until something accepts on 127.0.0.1:PORT;
# after 10 s, shows ERROR_LOG and exits naming NAME.
wait_port() {
  local deadline=$((SECONDS + 10))
  until (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null; do
    [ $SECONDS -lt $deadline ] || { echo "$(basename "$0"): $1 did not start" >&2; cat "$3" >&2; exit 1; }
    sleep 0.05
  done
}
