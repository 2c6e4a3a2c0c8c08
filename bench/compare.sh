#!/usr/bin/env bash
# Compares fetch with curl and wget (and a raw read loop) on this machine, interleaved, against a private nginx on loopback; writes BENCHMARKS.md's comparison section and bench/compare.png.
#
# Usage: bench/compare.sh
#
# Installs what it lacks (Debian: nginx, curl, wget, openssl, gnuplot-nox,
# python3; with sudo when not root), builds fetch with `cargo build --release`
# and the helpers bench/rawread.rs (the floor: a bare read loop),
# bench/rawbatch.rs (row 6 in one event loop), bench/chunked_server.rs and
# bench/measure.rs with `rustc -O`, and makes a temporary directory (mode
# 755: nginx's workers run unprivileged) with a 1 GiB and a 1 MiB random file,
# a 6-byte file, 1,000 small files (1-16 KiB) and a private CA and certificate
# for 127.0.0.1. Its own nginx (never the system service) serves them on two
# free loopback ports, plain http and https; /chunked/ serves the same files
# with Transfer-Encoding: chunked in 64 KiB chunks, and chunked_server serves
# the 1 GiB file from memory, chunked and not. bench/compare.py then checks
# every command's bytes once, times the rows interleaved (each round runs each
# command once, in shuffled order), and writes the results. Everything the
# script made is removed on exit. hyperfine and /usr/bin/time are not needed:
# bench/measure.rs (fork, exec, wait4) gives wall time, CPU time and peak RSS.
#
# Environment:
#   BENCH_QUICK=1     a quick check: 256 MiB instead of 1 GiB, 200 small files,
#                     3 rounds; the results go to a temporary directory (printed),
#                     not to BENCHMARKS.md
#   BENCH_ROUNDS=N    N rounds for every row (default: 20 for the 1 GiB rows,
#                     50 for the 6-byte file, 10 for the batch, 20 for 1 MiB)
#   BENCH_ROWS="..."  only these rows (null file tiny chunked https batch mid);
#                     prints the figures, writes nothing
#   BENCH_SEED=N      the shuffle's seed (default: random, and recorded)
#   BENCH_NOTE=TEXT   a note for the report (for instance about the machine's load)
#   BENCH_JSON=FILE   also keep every sample (and the setup) there as JSON
#   BENCH_OUT_DIR=D   where BENCHMARKS.md and compare.png go (default: the
#                     repository; with BENCH_QUICK=1 a new temporary directory)
set -euo pipefail
shopt -s inherit_errexit

script_started=$(date +%s.%N)
load_before=$(cut -d' ' -f1-3 /proc/loadavg | sed 's/ /, /g')
script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TAG=compare
# shellcheck source=bench/common.sh
source "$script_dir/common.sh"
repo=$(git -C "$script_dir" rev-parse --show-toplevel) || die "not inside a git repository: $script_dir"

QUICK=${BENCH_QUICK:-0}
if [[ $QUICK == 1 ]]; then
    BIG_MIB=256
    SMALL_COUNT=200
    R_BIG=3 R_TINY=3 R_BATCH=3 R_MID=3
else
    BIG_MIB=1024
    SMALL_COUNT=1000
    R_BIG=20 R_TINY=50 R_BATCH=10 R_MID=20
fi
if [[ -n ${BENCH_ROUNDS:-} ]]; then
    is_uint "$BENCH_ROUNDS" || die "BENCH_ROUNDS must be a positive integer, got '$BENCH_ROUNDS'"
    R_BIG=$BENCH_ROUNDS R_TINY=$BENCH_ROUNDS R_BATCH=$BENCH_ROUNDS R_MID=$BENCH_ROUNDS
fi
SEED=${BENCH_SEED:-$RANDOM$RANDOM}
is_uint "$SEED" || die "BENCH_SEED must be a positive integer, got '$SEED'"
ROWS=${BENCH_ROWS:-}
for r in $ROWS; do
    [[ $r =~ ^(null|file|tiny|chunked|https|batch|mid)$ ]] || die "unknown row in BENCH_ROWS: $r"
done

# --- tools -------------------------------------------------------------------

missing=()
[[ -n $(find_nginx) ]] || missing+=(nginx)
command -v curl >/dev/null || missing+=(curl)
command -v wget >/dev/null || missing+=(wget)
command -v openssl >/dev/null || missing+=(openssl)
command -v gnuplot >/dev/null || missing+=(gnuplot-nox)
command -v python3 >/dev/null || missing+=(python3)
command -v cmp >/dev/null || missing+=(diffutils)
command -v xargs >/dev/null || missing+=(findutils)
install_missing "${missing[@]}"
NGINX=$(find_nginx)
[[ -n $NGINX ]] || die "nginx not found after installing it"
command -v cargo >/dev/null || die "cargo not found: install a Rust toolchain (rust-version in Cargo.toml)"
command -v rustc >/dev/null || die "rustc not found"

# --- work directory, cleaned up on exit ---------------------------------------

umask 022
WORK=$(mktemp -d "${TMPDIR:-/tmp}/fetch-compare.XXXXXX")
# nginx's workers run as an unprivileged user when we are root: they must reach data/.
chmod 755 "$WORK"
nginx_started=0
server_pid=

cleanup() {
    local rc=$?
    if [[ -n $server_pid ]]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    stop_nginx
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p "$WORK/data/small" "$WORK/bin" "$WORK/out" "$WORK/home" "$WORK/trash"

# --- build ---------------------------------------------------------------------

log "building fetch: cargo build --release --locked"
(cd "$repo" && cargo build --release --locked --bin fetch) >&2
FETCH=${CARGO_TARGET_DIR:-$repo/target}/release/fetch
[[ $FETCH == /* ]] || FETCH=$repo/$FETCH
[[ -x $FETCH ]] || die "no binary at $FETCH after the build"
log "compiling bench/rawread.rs: rustc -O"
rustc --edition 2021 -O -o "$WORK/bin/rawread" "$script_dir/rawread.rs" >&2
log "compiling bench/rawbatch.rs: rustc -O"
rustc --edition 2021 -O -o "$WORK/bin/rawbatch" "$script_dir/rawbatch.rs" >&2
log "compiling bench/chunked_server.rs: rustc -O"
rustc --edition 2021 -O -o "$WORK/bin/chunked_server" "$script_dir/chunked_server.rs" >&2
log "compiling bench/measure.rs: rustc -O"
rustc --edition 2021 -O -o "$WORK/bin/measure" "$script_dir/measure.rs" >&2

# --- data ------------------------------------------------------------------------

log "writing data: $BIG_MIB MiB, 1 MiB, 6 bytes, $SMALL_COUNT small files"
head -c $((BIG_MIB * 1024 * 1024)) /dev/urandom >"$WORK/data/big"
head -c $((1024 * 1024)) /dev/urandom >"$WORK/data/mid"
printf 'fetch\n' >"$WORK/data/tiny"
: >"$WORK/data/empty"
python3 - "$WORK/data/small" "$SMALL_COUNT" "$SEED" <<'EOF'
import os, random, sys
d, count, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(seed)
for i in range(count):
    with open(os.path.join(d, f"f{i:04d}.bin"), "wb") as f:
        f.write(os.urandom(rng.randint(1024, 16 * 1024)))
EOF
# To disk now, so that the kernel's writeback of 1 GiB does not run during the timing.
sync

# --- certificates: a private CA and a leaf for 127.0.0.1 and localhost ------------

log "making a CA and a certificate with openssl"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$WORK/ca.key" -out "$WORK/ca.pem" -days 2 -subj "/CN=fetch bench CA" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$WORK/server.key" -out "$WORK/server.csr" -subj "/CN=localhost" 2>/dev/null
printf '%s\n' "subjectAltName=IP:127.0.0.1,DNS:localhost" "basicConstraints=critical,CA:FALSE" \
    "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth" >"$WORK/server.ext"
openssl x509 -req -in "$WORK/server.csr" -CA "$WORK/ca.pem" -CAkey "$WORK/ca.key" -CAcreateserial \
    -out "$WORK/server.pem" -days 2 -extfile "$WORK/server.ext" 2>/dev/null

# --- nginx -------------------------------------------------------------------------

read -r PORT SPORT <<<"$(free_ports 2)"
cat >"$WORK/nginx.conf" <<EOF
daemon on;
worker_processes 1;
pid $WORK/nginx.pid;
error_log $WORK/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000;
    client_body_temp_path $WORK/client_body_temp;
    proxy_temp_path $WORK/proxy_temp;
    fastcgi_temp_path $WORK/fastcgi_temp;
    uwsgi_temp_path $WORK/uwsgi_temp;
    scgi_temp_path $WORK/scgi_temp;
    default_type application/octet-stream;
    server {
        listen 127.0.0.1:$PORT;
        root $WORK/data;
        # The same files, chunked: the addition filter appends an empty file, so
        # the length is unknown and nginx frames the body with chunks, without
        # reading or changing its bytes. Without sendfile the file goes through
        # 64 KiB buffers, one chunk each.
        location /chunked/ {
            alias $WORK/data/;
            add_after_body /empty;
            addition_types *;
            sendfile off;
            output_buffers 2 64k;
        }
    }
    server {
        listen 127.0.0.1:$SPORT ssl;
        ssl_certificate $WORK/server.pem;
        ssl_certificate_key $WORK/server.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        root $WORK/data;
    }
}
EOF
log "starting nginx on 127.0.0.1:$PORT (http) and :$SPORT (https)"
BASE=http://127.0.0.1:$PORT
start_nginx "$BASE/mid"

# The chunked body: the response must say chunked, and the bytes must be the file's.
curl -sv -o "$WORK/out/chunked" "$BASE/chunked/big" 2>"$WORK/chunked.head"
grep -qi '^< Transfer-Encoding: chunked' "$WORK/chunked.head" ||
    { cat "$WORK/chunked.head" >&2; die "$BASE/chunked/big is not chunked"; }
! grep -qi '^< Content-Length' "$WORK/chunked.head" || die "$BASE/chunked/big has a Content-Length"
cmp "$WORK/out/chunked" "$WORK/data/big" || die "$BASE/chunked/big does not deliver the file's bytes"
rm -f "$WORK/out/chunked"
chunk_sizes=$(curl -s --raw "$BASE/chunked/mid" | python3 -c '
import collections, sys
d = sys.stdin.buffer.read()
i, sizes = 0, collections.Counter()
while True:
    j = d.index(b"\r\n", i)
    n = int(d[i:j].split(b";")[0], 16)
    sizes[n] += 1
    i = j + 2 + n + 2
    if n == 0:
        break
print(" + ".join(f"{c} × {n:,} bytes" for n, c in sorted(sizes.items(), reverse=True)))')
chunked_check="curl -sv shows Transfer-Encoding: chunked and no Content-Length, cmp finds the bytes identical; the 1 MiB file comes as $chunk_sizes"
log "chunked: $chunked_check"

# The in-memory chunked server (bench/chunked_server.rs): the same bytes, chunked
# or with Content-Length, written from memory; it prints its port when ready.
"$WORK/bin/chunked_server" "$WORK/data/big" >"$WORK/chunked_server.port" 2>"$WORK/chunked_server.log" &
server_pid=$!
for i in $(seq 600); do
    [[ -s $WORK/chunked_server.port ]] && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$WORK/chunked_server.log" >&2; die "chunked_server exited"; }
    ((i < 600)) || die "chunked_server did not start within 60 s"
    sleep 0.1
done
CPORT=$(head -n 1 "$WORK/chunked_server.port")
curl -sv -o "$WORK/out/chunked" "http://127.0.0.1:$CPORT/chunked" 2>"$WORK/chunked.head"
grep -qi '^< Transfer-Encoding: chunked' "$WORK/chunked.head" || die "chunked_server's /chunked is not chunked"
cmp "$WORK/out/chunked" "$WORK/data/big" || die "chunked_server's /chunked does not deliver the file's bytes"
rm -f "$WORK/out/chunked"
log "chunked_server on 127.0.0.1:$CPORT"

tls_curl=$(curl -sv --cacert "$WORK/ca.pem" -o /dev/null "https://127.0.0.1:$SPORT/tiny" 2>&1 |
    sed -n 's/^\* SSL connection using //p' | head -n 1)
tls_fetch=$("$FETCH" -v --cacert "$WORK/ca.pem" -o /dev/null "https://127.0.0.1:$SPORT/tiny" 2>&1 |
    sed -n 's/^\* \(.*\) handshake done, /\1 /p' | head -n 1)
tls="curl: $tls_curl; fetch: $tls_fetch"

# --- URL list ------------------------------------------------------------------------

for f in "$WORK"/data/small/f*.bin; do
    echo "$BASE/small/${f##*/}"
done >"$WORK/urls.txt"

# --- machine and tools -------------------------------------------------------------

cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
cpu_mhz=$(sed -n 's/^cpu MHz[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
if [[ $QUICK == 1 ]]; then
    OUT_DIR=${BENCH_OUT_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/fetch-compare-quick.XXXXXX")}
else
    OUT_DIR=${BENCH_OUT_DIR:-$repo}
fi
mkdir -p "$OUT_DIR"
if [[ $OUT_DIR -ef $repo ]]; then
    md_out=$repo/BENCHMARKS.md
    png_out=$repo/bench/compare.png
    png_rel=bench/compare.png
else
    md_out=$OUT_DIR/BENCHMARKS.md
    png_out=$OUT_DIR/compare.png
    png_rel=compare.png
fi

fs_type=$(findmnt -n -o FSTYPE --target "$WORK" 2>/dev/null || stat -f -c %T "$WORK")
fs_options=$(findmnt -n -o OPTIONS --target "$WORK" 2>/dev/null || echo '?')
CMP_FS="$fs_type, mounted $fs_options"
export CMP_FS CMP_WORK=$WORK CMP_PORT=$PORT CMP_SPORT=$SPORT CMP_CPORT=$CPORT CMP_FETCH=$FETCH \
    CMP_RAWREAD=$WORK/bin/rawread CMP_RAWBATCH=$WORK/bin/rawbatch CMP_MEASURE=$WORK/bin/measure CMP_CA=$WORK/ca.pem CMP_SEED=$SEED CMP_QUICK=$QUICK \
    CMP_R_BIG=$R_BIG CMP_R_TINY=$R_TINY CMP_R_BATCH=$R_BATCH CMP_R_MID=$R_MID CMP_ROWS=$ROWS \
    CMP_SCRIPT_STARTED=$script_started CMP_LOAD_BEFORE=$load_before CMP_NOTE=${BENCH_NOTE:-} \
    CMP_CHUNKED_CHECK=$chunked_check CMP_TLS=$tls \
    CMP_JSON_OUT=${BENCH_JSON:-} CMP_MD_IN=$repo/BENCHMARKS.md CMP_MD_OUT=$md_out CMP_PNG_OUT=$png_out CMP_PNG_REL=$png_rel
CMP_COMMIT="$(git -C "$repo" rev-parse --short HEAD)$(git -C "$repo" diff --quiet HEAD -- src Cargo.toml Cargo.lock || echo ' + uncommitted changes')"
CMP_MACHINE_NPROC=$(nproc)
CMP_MACHINE_CPU="${cpu_model:-unknown CPU}${cpu_mhz:+ at ${cpu_mhz%.*} MHz}"
CMP_MACHINE_KERNEL="$(uname -r) $(uname -m)"
CMP_MACHINE_RAM=$(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
CMP_MACHINE_OS=$(sed -n 's/^PRETTY_NAME="\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' /etc/os-release 2>/dev/null || true)
CMP_TOOL_FETCH=$("$FETCH" --version | head -n 1)
CMP_TOOL_CURL=$(curl -V | head -n 1)
CMP_TOOL_WGET=$(wget -V | head -n 1)
CMP_TOOL_NGINX=$("$NGINX" -v 2>&1 | head -n 1)
CMP_TOOL_RUSTC=$(rustc -V)
export CMP_COMMIT CMP_MACHINE_NPROC CMP_MACHINE_CPU CMP_MACHINE_KERNEL CMP_MACHINE_RAM CMP_MACHINE_OS \
    CMP_TOOL_FETCH CMP_TOOL_CURL CMP_TOOL_WGET CMP_TOOL_NGINX CMP_TOOL_RUSTC

# --- measure and report ------------------------------------------------------------------

python3 "$script_dir/compare.py"

if [[ -z $ROWS ]]; then
    log "wrote $md_out and $png_out"
fi
log "done in $((SECONDS / 60)) min $((SECONDS % 60)) s"
