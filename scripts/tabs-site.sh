#!/usr/bin/env bash
# Writes the small site scripts/tabs.lua and scripts/tabs-oha.sh expect:
#
#   scripts/tabs-site.sh DIR
#
#   DIR/index.html      a page (~1 KiB) that links the assets below; opened in
#                       a browser it also calls the /-/work/ endpoints once
#   DIR/tab/app.js      ~40 KiB of JavaScript (a real fetch() at the top,
#                       deterministic filler after it)
#   DIR/tab/style.css   ~8 KiB of CSS
#   DIR/tab/logo.png    ~16 KiB, a valid 64x64 RGBA PNG (an orange disc) whose
#                       pixels are stored uncompressed, so the size is fixed
#   DIR/tab/data.json   ~2 KiB of JSON
#
# Idempotent: the content is deterministic, and a file whose content is
# already right is left alone (same mtime, same ETag); others are replaced
# atomically (write to a temporary file, then rename), so a server serving
# DIR never sees half a file. It refuses to overwrite a text file it did not
# write (one without the "forkpool tabs-site" marker) and touches nothing else
# in DIR. Needs only bash and coreutils.
set -euo pipefail

if [ $# -ne 1 ] || [ "$1" = -h ] || [ "$1" = --help ]; then
  head -n 20 "$0" | tail -n +2 >&2
  exit 2
fi
dir=${1%/}
[ -n "$dir" ] || dir=/
marker="forkpool tabs-site"

# --- refuse to clobber files we did not write --------------------------------
for f in index.html tab/app.js tab/style.css tab/data.json; do
  path="$dir/$f"
  if [ -e "$path" ]; then
    head=$(head -c 512 "$path" | tr -d '\0')
    if [[ $head != *"$marker"* ]]; then
      echo "tabs-site.sh: refusing to overwrite $path: it was not written by this script" >&2
      echo "tabs-site.sh: remove it, or pick another DIR" >&2
      exit 1
    fi
  fi
done
mkdir -p "$dir/tab"

# put PATH: stdin becomes PATH, unless PATH already holds exactly that.
put() {
  local path=$1 tmp
  tmp=$(mktemp "$path.XXXXXX")
  cat > "$tmp"
  if [ -f "$path" ] && [ "$(md5sum < "$path")" = "$(md5sum < "$tmp")" ]; then
    rm -f "$tmp"
  else
    chmod 644 "$tmp"
    mv -f "$tmp" "$path"
  fi
}

# --- index.html --------------------------------------------------------------
put "$dir/index.html" <<'EOF'
<!doctype html>
<!-- forkpool tabs-site: the page scripts/tabs.lua loads; written by scripts/tabs-site.sh -->
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>forkpool tab</title>
  <link rel="stylesheet" href="/tab/style.css">
  <script defer src="/tab/app.js"></script>
</head>
<body>
  <header><img src="/tab/logo.png" width="64" height="64" alt="logo"> <h1>forkpool tab</h1></header>
  <p>A browser tab in miniature: this page, its assets (<code>/tab/app.js</code>,
  <code>/tab/style.css</code>, <code>/tab/logo.png</code>, <code>/tab/data.json</code>)
  and a few API calls to forkpool's workloads (<code>/-/work/cpu</code>,
  <code>io</code>, <code>mem</code>, <code>shared</code>). app.js makes those
  calls once and shows who served them below.</p>
  <pre id="out">loading…</pre>
  <p><a href="/-/">forkpool dashboard</a></p>
</body>
</html>
EOF

# --- tab/app.js (~40 KiB) -----------------------------------------------------
{
  cat <<'EOF'
// forkpool tabs-site: app.js, written by scripts/tabs-site.sh.
// The first lines are what a tab does after loading: a few API calls. The rest
// is deterministic filler so the file weighs what a small bundle does (~40 KiB).
(function () {
  "use strict";
  const calls = [
    "/tab/data.json",
    "/-/work/cpu?ms=2",
    "/-/work/io?ms=10",
    "/-/work/mem?kb=256",
    "/-/work/shared?ops=100",
  ];
  Promise.all(calls.map((url) => fetch(url).then((r) => r.json())))
    .then((results) => {
      document.getElementById("out").textContent = results
        .map((r, i) => calls[i] + "\n  " + JSON.stringify(r))
        .join("\n");
    })
    .catch((err) => {
      document.getElementById("out").textContent = "failed: " + err;
    });
})();

EOF
  for i in $(seq 1 762); do
    printf 'function f%04d(x) { return (x * %d + %d) %% 65521; }\n' "$i" $((i * 31 % 97 + 2)) "$i"
  done
  printf 'window.forkpoolFiller = [f0001, f0381, f0762];\n'
} | put "$dir/tab/app.js"

# --- tab/style.css (~8 KiB) ---------------------------------------------------
{
  cat <<'EOF'
/* forkpool tabs-site: style.css, written by scripts/tabs-site.sh (~8 KiB). */
body { font: 16px/1.5 system-ui, sans-serif; margin: 2rem auto; max-width: 48rem; color: #222; }
header { display: flex; align-items: center; gap: 1rem; }
pre { background: #f4f4f4; padding: 1rem; overflow-x: auto; }
EOF
  for i in $(seq 1 183); do
    printf '.c%03d { color: #%02x%02x%02x; margin: %dpx %dpx; }\n' \
      "$i" $((i * 37 % 256)) $((i * 59 % 256)) $((i * 83 % 256)) $((i % 7)) $((i % 11))
  done
} | put "$dir/tab/style.css"

# --- tab/data.json (~2 KiB) ---------------------------------------------------
{
  printf '{\n  "generator": "%s",\n  "items": [\n' "$marker"
  for i in $(seq 1 30); do
    sep=,; [ "$i" -eq 30 ] && sep=
    printf '    {"id": %d, "name": "item %02d", "price": %d.%02d, "stock": %d}%s\n' \
      "$i" "$i" $((i * 7 % 50 + 1)) $((i * 13 % 100)) $((i * 17 % 40)) "$sep"
  done
  printf '  ]\n}\n'
} | put "$dir/tab/data.json"

# --- tab/logo.png (~16 KiB, a valid PNG) --------------------------------------
# 64x64 RGBA, 8 bits per channel: an orange disc shading downwards on a
# transparent background. The zlib stream uses one "stored" (uncompressed)
# deflate block, so the file is 16,516 bytes whatever the pixels are; CRC-32
# and Adler-32 are computed here in bash, so the PNG checks out in any viewer.
crc_table=()
for ((n = 0; n < 256; n++)); do
  c=$n
  for ((k = 0; k < 8; k++)); do
    if ((c & 1)); then c=$(((c >> 1) ^ 0xEDB88320)); else c=$((c >> 1)); fi
  done
  crc_table[n]=$c
done
# crc32 BYTE...: prints the CRC-32 of the bytes (given as numbers).
crc32() {
  local c=0xFFFFFFFF b
  for b in "$@"; do c=$((crc_table[(c ^ b) & 0xFF] ^ (c >> 8))); done
  echo $((c ^ 0xFFFFFFFF))
}
be32() { echo $(($1 >> 24 & 255)) $(($1 >> 16 & 255)) $(($1 >> 8 & 255)) $(($1 & 255)); }

size=64
raw=()  # the filtered scanlines: a filter byte (0) then RGBA per pixel
for ((y = 0; y < size; y++)); do
  raw+=(0)
  for ((x = 0; x < size; x++)); do
    dx=$((2 * x - size + 1)) dy=$((2 * y - size + 1))
    if ((dx * dx + dy * dy <= 60 * 60)); then
      raw+=(240 $((160 - y * 2)) 40 255)
    else
      raw+=(0 0 0 0)
    fi
  done
done
a=1 b=0
for v in "${raw[@]}"; do a=$(((a + v) % 65521)); b=$(((b + a) % 65521)); done
len=${#raw[@]}
# zlib header (deflate, 32 KiB window), one final stored block, Adler-32.
zlib=(0x78 0x01 1 $((len & 255)) $((len >> 8)) $((~len & 255)) $((~len >> 8 & 255))
  "${raw[@]}" $(be32 $(((b << 16) | a))))
IHDR=(73 72 68 82 $(be32 $size) $(be32 $size) 8 6 0 0 0)  # "IHDR" w h depth=8 RGBA
IDAT=(73 68 65 84 "${zlib[@]}")                             # "IDAT" ...
IEND=(73 69 78 68)                                          # "IEND"
png=(137 80 78 71 13 10 26 10
  $(be32 13) "${IHDR[@]}" $(be32 "$(crc32 "${IHDR[@]}")")
  $(be32 $((${#IDAT[@]} - 4))) "${IDAT[@]}" $(be32 "$(crc32 "${IDAT[@]}")")
  $(be32 0) "${IEND[@]}" $(be32 "$(crc32 "${IEND[@]}")"))
printf -v escaped '\\x%02x' "${png[@]}"
printf "$escaped" | put "$dir/tab/logo.png"

echo "tabs-site.sh: $dir is ready (index.html, tab/app.js, tab/style.css, tab/logo.png, tab/data.json)"
