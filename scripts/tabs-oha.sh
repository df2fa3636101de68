#!/usr/bin/env bash
# The browser-tab load of scripts/tabs.lua, for oha instead of wrk:
#
#   scripts/tabs-oha.sh [URL] [DURATION] [CONNECTIONS]
#   scripts/tabs-oha.sh http://127.0.0.1:8080 30s 32      # the defaults
#
# oha can't script a sequence of requests, so this runs one oha per URL of
# the tab, all at once for DURATION (oha -z: 30s, 2m, 500ms; a bare number
# is seconds), and splits CONNECTIONS between them in proportion to the
# weights (at least one each; largest remainders get the spare ones). The
# URLs and weights are read from the `tab` table in scripts/tabs.lua, so the
# two stay in step. Serve the site from scripts/tabs-site.sh first.
#
# Not the same load as wrk's: tabs.lua fixes the mix of REQUESTS (every
# thread sends whole tabs), here the mix of CONNECTIONS is fixed and each
# connection goes as fast as its URL allows, so slow URLs (io?ms=10) get a
# smaller share of requests than their weight. The "mix served" line shows
# the mix that resulted. Compare modes with the same tool.
#
# Prints, per URL and in total: connections, req/s, non-2xx responses and
# errors (requests cut off at the deadline are listed apart: they are not
# failures). Exit code 0 when clean, 1 if anything failed, 2 on bad usage.
# Only loopback is load-tested: URL must be http://127.0.0.1, localhost or
# [::1] (any port, no path). Needs oha (cargo install oha).
set -euo pipefail

usage() { head -n 24 "$0" | tail -n +2 >&2; exit 2; }
die() { echo "tabs-oha.sh: $*" >&2; exit 2; }

case "${1:-}" in -h|--help) usage ;; esac
[ $# -le 3 ] || usage
url=${1:-http://127.0.0.1:8080}
duration=${2:-30s}
connections=${3:-32}

# --- arguments ---------------------------------------------------------------
url=${url%/}
case "$url" in
  http://*) authority=${url#http://} ;;
  *) die "URL must start with http:// (forkpool speaks plain HTTP/1.1): $url" ;;
esac
case "$authority" in
  */*|*\?*|*#*|*@*) die "URL must be a bare origin like http://127.0.0.1:8080, without path, query or user: $url" ;;
esac
if [[ $authority == \[* ]]; then
  host=${authority%%]*}]
  rest=${authority#"$host"}
else
  host=${authority%%:*}
  rest=${authority#"$host"}
fi
case "$host" in
  127.0.0.1|localhost|\[::1\]) ;;
  *) die "refusing to load-test $host: only 127.0.0.1, localhost or [::1] (this project load-tests loopback only)" ;;
esac
if [ -z "$rest" ]; then
  port=80
elif [[ $rest =~ ^:([0-9]{1,5})$ ]] && [ "${BASH_REMATCH[1]}" -ge 1 ] && [ "${BASH_REMATCH[1]}" -le 65535 ]; then
  port=${BASH_REMATCH[1]}
else
  die "bad port in $url"
fi
[[ $duration =~ ^[0-9]+$ ]] && duration=${duration}s
[[ $duration =~ ^[1-9][0-9]*(ms|s|m|h)$ ]] || die "DURATION must look like 30s, 2m or 500ms, not '$duration'"
[[ $connections =~ ^[1-9][0-9]*$ ]] || die "CONNECTIONS must be a positive integer, not '$connections'"

command -v oha >/dev/null || die "oha is not installed: cargo install oha (or use wrk: wrk -t2 -c32 -d30s -s scripts/tabs.lua $url)"

# --- the tab: kind, path and weight of each URL, from tabs.lua -----------------
lua="$(cd "$(dirname "$0")" && pwd)/tabs.lua"
[ -r "$lua" ] || die "can't read $lua (it holds the weights)"
kinds=() paths=() weights=()
while read -r kind path weight; do
  [ "$weight" -gt 0 ] || continue
  kinds+=("$kind") paths+=("$path") weights+=("$weight")
done < <(sed -n -E '/^[[:space:]]*--/d
  s/.*kind *= *"([a-z]+)", *path *= *"([^"]+)", *weight *= *([0-9]+).*/\1 \2 \3/p' "$lua")
n=${#paths[@]}
[ "$n" -gt 0 ] || die "found no { kind = ..., path = ..., weight = N } lines in $lua"
total_weight=0
for w in "${weights[@]}"; do total_weight=$((total_weight + w)); done

# --- split the connections: proportional, at least one, largest remainders ---
conns=() rems=() used=0
for ((i = 0; i < n; i++)); do
  c=$((connections * weights[i] / total_weight))
  rems[i]=$((connections * weights[i] % total_weight))
  [ "$c" -ge 1 ] || { c=1; rems[i]=-1; }
  conns[i]=$c
  used=$((used + c))
done
while [ "$used" -lt "$connections" ]; do
  best=0
  for ((i = 1; i < n; i++)); do [ "${rems[i]}" -gt "${rems[best]}" ] && best=$i; done
  conns[best]=$((conns[best] + 1)) rems[best]=-1 used=$((used + 1))
done
if [ "$used" -gt "$connections" ]; then
  echo "tabs-oha.sh: $connections connections is fewer than one per URL; using $used" >&2
fi

# --- is anyone listening? ------------------------------------------------------
tcp_host=${host#[}; tcp_host=${tcp_host%]}
(exec 3<>"/dev/tcp/$tcp_host/$port") 2>/dev/null || die "nothing is listening at $url (start forkpool first)"

# --- run one oha per URL, all at once ----------------------------------------
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

flags=(--no-tui -z "$duration")
# Newer oha colours its summary even into a file unless told not to.
if oha --help 2>/dev/null | grep -q -- --disable-color; then flags+=(--disable-color); fi

echo "tabs-oha.sh: $url, $duration, $used connections over $n URLs (one oha each)"
for ((i = 0; i < n; i++)); do
  oha "${flags[@]}" -c "${conns[i]}" "$url${paths[i]}" > "$work/$i.out" 2> "$work/$i.err" &
  pids+=($!)
done
failed=0
for ((i = 0; i < n; i++)); do
  if ! wait "${pids[i]}"; then
    echo "tabs-oha.sh: oha for ${paths[i]} failed:" >&2
    cat "$work/$i.err" >&2
    failed=1
  fi
done
pids=()

# --- parse oha's text summary: "Requests/sec:", "[200] N responses", errors ---
# summary FILE prints: req/s responses non-2xx errors cut-at-deadline
summary() {
  sed 's/\x1b\[[0-9;]*m//g' "$1" | awk '
    $1 == "Requests/sec:" { rps = $2 }
    section == "errors" && /^ *\[[0-9]+\] / {
      count = substr($1, 2, length($1) - 2)
      if ($0 ~ /aborted due to deadline/) cut += count; else errors += count
    }
    section != "errors" && /^ *\[[0-9][0-9][0-9]\] [0-9]+ responses/ {
      answered += $2
      if ($1 !~ /^\[2/) bad += $2
    }
    /^Error distribution:/ { section = "errors" }
    END { printf "%.1f %d %d %d %d\n", rps, answered, bad, errors, cut }'
}

printf '\n%-26s %6s %6s %10s %9s %7s %6s\n' path weight conns req/s non-2xx errors cut
sum_rps=0 sum_bad=0 sum_err=0 sum_cut=0
declare -A kind_rps=()
for ((i = 0; i < n; i++)); do
  read -r rps answered bad errors cut < <(summary "$work/$i.out")
  printf '%-26s %6d %6d %10.1f %9d %7d %6d\n' "${paths[i]}" "${weights[i]}" "${conns[i]}" \
    "$rps" "$bad" "$errors" "$cut"
  sum_rps=$(awk -v a="$sum_rps" -v b="$rps" 'BEGIN { printf "%.1f", a + b }')
  kind_rps[${kinds[i]}]=$(awk -v a="${kind_rps[${kinds[i]}]:-0}" -v b="$rps" 'BEGIN { printf "%.1f", a + b }')
  sum_bad=$((sum_bad + bad)) sum_err=$((sum_err + errors)) sum_cut=$((sum_cut + cut))
  [ "$answered" -gt 0 ] || failed=1
done
printf '%-26s %6d %6d %10.1f %9d %7d %6d\n' total "$total_weight" "$used" "$sum_rps" \
  "$sum_bad" "$sum_err" "$sum_cut"

mix=""
for kind in page asset api; do
  share=$(awk -v a="${kind_rps[$kind]:-0}" -v t="$sum_rps" 'BEGIN { printf "%.1f", (t > 0 ? 100 * a / t : 0) }')
  mix+="$kind $share%, "
done
echo
echo "combined   $sum_rps req/s"
echo "mix served ${mix%, } (of requests; tabs.lua sends the weights exactly)"
echo "cut        $sum_cut requests in flight at the deadline (not failures)"
if [ "$failed" -eq 0 ] && [ "$sum_bad" -eq 0 ] && [ "$sum_err" -eq 0 ]; then
  echo "result     clean"
else
  echo "result     $sum_bad non-2xx, $sum_err errors$([ "$failed" -eq 0 ] || echo ', and an oha run failed')"
  exit 1
fi
