#!/usr/bin/env bash
# Measures how transfer::BUFFER_SIZE affects fetch's download speed, CPU time and peak RSS (against curl and wget) from a private nginx on loopback.
#
# Usage: bench/buffer-size.sh > results.md
#
# Builds one release binary of the repository's HEAD per buffer size, serves a
# random file from its own nginx on 127.0.0.1, times every binary (and curl and
# wget) with hyperfine, and measures peak RSS with /usr/bin/time. The results go
# to stdout as markdown; progress, build and hyperfine logs go to stderr. Nothing
# is written into the repository: everything lives in a temporary directory that
# is removed on exit.
#
# Environment:
#   BENCH_SIZES       buffer sizes in KiB to build and time   (default "8 16 32 64 128 256")
#   BENCH_RUNS        hyperfine runs per command              (default 10)
#   BENCH_SIZE_MIB    size of the big file, MiB               (default 1024)
#   BENCH_TARGET_DIR  cargo target directory to reuse across runs (default: one inside
#                     the temporary directory, removed on exit)
set -euo pipefail
shopt -s inherit_errexit

SIZES=${BENCH_SIZES:-8 16 32 64 128 256}
RUNS=${BENCH_RUNS:-10}
SIZE_MIB=${BENCH_SIZE_MIB:-1024}
RSS_RUNS=3
CONST_RE='^pub const BUFFER_SIZE: usize = [0-9]+ \* 1024;$'

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TAG=buffer-size
# shellcheck source=bench/common.sh
source "$script_dir/common.sh"

is_uint "$RUNS" || die "BENCH_RUNS must be a positive integer, got '$RUNS'"
is_uint "$SIZE_MIB" || die "BENCH_SIZE_MIB must be a positive integer, got '$SIZE_MIB'"
read -r -a SIZE_LIST <<<"$SIZES"
((${#SIZE_LIST[@]} > 0)) || die "BENCH_SIZES is empty"
for n in "${SIZE_LIST[@]}"; do
    is_uint "$n" || die "BENCH_SIZES must hold positive integers (KiB), got '$n'"
done

repo=$(git -C "$script_dir" rev-parse --show-toplevel) || die "not inside a git repository: $script_dir"

# --- tools -------------------------------------------------------------------

missing=()
[[ -n $(find_nginx) ]] || missing+=(nginx)
command -v hyperfine >/dev/null || missing+=(hyperfine)
[[ -x /usr/bin/time ]] || missing+=(time)
command -v curl >/dev/null || missing+=(curl)
command -v wget >/dev/null || missing+=(wget)
command -v python3 >/dev/null || missing+=(python3)
install_missing "${missing[@]}"
NGINX=$(find_nginx)
[[ -n $NGINX ]] || die "nginx not found after installing it"
command -v cargo >/dev/null || die "cargo not found: install a Rust toolchain (rust-version in Cargo.toml)"

# --- work directory, cleaned up on exit ---------------------------------------

umask 022
WORK=$(mktemp -d "${TMPDIR:-/tmp}/fetch-buffer-size.XXXXXX")
# nginx's worker runs as an unprivileged user when we are root: it must reach data/.
chmod 755 "$WORK"
nginx_started=0

cleanup() {
    local rc=$?
    stop_nginx
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p "$WORK/data" "$WORK/bin" "$WORK/src"

# --- data ----------------------------------------------------------------------

log "writing data: big = $SIZE_MIB MiB, mid = 1 MiB (from /dev/urandom)"
head -c $((SIZE_MIB * 1024 * 1024)) /dev/urandom >"$WORK/data/big"
head -c $((1024 * 1024)) /dev/urandom >"$WORK/data/mid"

# --- nginx ---------------------------------------------------------------------

PORT=$(free_ports 1)
cat >"$WORK/nginx.conf" <<EOF
daemon on;
worker_processes 1;
pid $WORK/nginx.pid;
error_log $WORK/error.log warn;
events { worker_connections 64; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    client_body_temp_path $WORK/client_body_temp;
    proxy_temp_path $WORK/proxy_temp;
    fastcgi_temp_path $WORK/fastcgi_temp;
    uwsgi_temp_path $WORK/uwsgi_temp;
    scgi_temp_path $WORK/scgi_temp;
    default_type application/octet-stream;
    server {
        listen 127.0.0.1:$PORT;
        root $WORK/data;
    }
}
EOF
log "starting nginx on 127.0.0.1:$PORT"
BASE=http://127.0.0.1:$PORT
start_nginx "$BASE/mid"

# --- one release binary per buffer size ------------------------------------------

commit=$(git -C "$repo" rev-parse --short HEAD)
log "copying HEAD ($commit) of $repo"
git -C "$repo" archive HEAD | tar -x -C "$WORK/src"
transfer=$WORK/src/src/transfer.rs
[[ $(grep -cE "$CONST_RE" "$transfer") -eq 1 ]] ||
    die "src/transfer.rs at HEAD has no single line matching: $CONST_RE"

export CARGO_TARGET_DIR=${BENCH_TARGET_DIR:-$WORK/target}
for n in "${SIZE_LIST[@]}"; do
    want="pub const BUFFER_SIZE: usize = $n * 1024;"
    sed -i -E "s/$CONST_RE/pub const BUFFER_SIZE: usize = $n * 1024;/" "$transfer"
    grep -qxF "$want" "$transfer" || die "sed did not set BUFFER_SIZE to $n KiB in src/transfer.rs"
    log "building fetch with BUFFER_SIZE = $n KiB (CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
    (cd "$WORK/src" && cargo build --release --locked --bin fetch) >&2
    cp "$CARGO_TARGET_DIR/release/fetch" "$WORK/bin/fetch-${n}k"
    # A binary identical to an earlier one means cargo did not rebuild.
    for other in "$WORK"/bin/fetch-*k; do
        [[ $other == "$WORK/bin/fetch-${n}k" ]] && continue
        ! cmp -s "$other" "$WORK/bin/fetch-${n}k" ||
            die "fetch-${n}k is identical to $(basename "$other"): the rebuild did not happen"
    done
done

# --- correctness before timing ---------------------------------------------------

for n in "${SIZE_LIST[@]}"; do
    rm -f "$WORK/mid.out"
    "$WORK/bin/fetch-${n}k" -s -o "$WORK/mid.out" "$BASE/mid" ||
        die "fetch-${n}k failed to download $BASE/mid"
    cmp "$WORK/data/mid" "$WORK/mid.out" >&2 || die "fetch-${n}k downloaded mid wrongly"
done
rm -f "$WORK/mid.out"
log "every binary downloads mid byte-exactly"

# --- report: machine and tools ---------------------------------------------------

cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
mem_total=$(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
cat <<EOF
# fetch buffer-size benchmark

Machine: $(nproc) cores, ${cpu_model:-unknown CPU}, $mem_total RAM, Linux $(uname -r) $(uname -m)

Tools:
- $(curl --version | head -n 1)
- $(wget --version | head -n 1)
- $("$NGINX" -v 2>&1 | head -n 1)
- $(hyperfine --version | head -n 1)
- $(rustc --version | head -n 1)

fetch: HEAD $commit, release profile; buffer sizes (KiB): ${SIZE_LIST[*]}
Workload: $SIZE_MIB MiB from nginx (sendfile on, one worker) on 127.0.0.1 to /dev/null.

EOF

# --- timing -------------------------------------------------------------------------

cmds=()
for n in "${SIZE_LIST[@]}"; do
    cmds+=(-n "fetch-${n}k" "$WORK/bin/fetch-${n}k -s -o /dev/null $BASE/big")
done
cmds+=(-n curl "curl -s -o /dev/null $BASE/big")
cmds+=(-n wget "wget -q -O /dev/null $BASE/big")
log "timing with hyperfine: ${#SIZE_LIST[@]} fetch binaries, curl, wget; $RUNS runs each"
hyperfine -N --style basic --warmup 2 --runs "$RUNS" \
    --export-markdown "$WORK/hyperfine.md" --export-json "$WORK/hyperfine.json" \
    "${cmds[@]}" >&2

echo "## Time ($RUNS runs each after 2 warm-ups, hyperfine -N)"
echo
python3 - "$WORK/hyperfine.json" "$SIZE_MIB" <<'EOF'
import json
import sys

path, size_mib = sys.argv[1], float(sys.argv[2])
with open(path) as f:
    results = json.load(f)["results"]
print("| command | median wall (s) | mean CPU user+sys (s) | throughput (MiB/s) |")
print("|---|---|---|---|")
for r in results:
    median = r["median"]
    cpu = r["user"] + r["system"]
    print(f"| {r['command']} | {median:.3f} | {cpu:.3f} | {size_mib / median:.0f} |")
EOF
echo
echo "hyperfine's own summary:"
echo
cat "$WORK/hyperfine.md"
echo

# --- peak RSS -------------------------------------------------------------------------

# Median of RSS_RUNS runs of "/usr/bin/time -f %M CMD...", in KiB.
peak_rss() {
    local vals=() i
    for ((i = 0; i < RSS_RUNS; i++)); do
        /usr/bin/time -o "$WORK/rss" -f %M "$@" >/dev/null
        vals+=("$(tail -n 1 "$WORK/rss")")
    done
    printf '%s\n' "${vals[@]}" | sort -n | sed -n "$(((RSS_RUNS + 1) / 2))p"
}

rss_rows=()
if [[ -x $WORK/bin/fetch-64k ]]; then
    rss_rows+=("fetch-64k|$WORK/bin/fetch-64k -s -o /dev/null")
else
    log "64 is not in BENCH_SIZES: no fetch-64k row in the RSS table"
fi
rss_rows+=("curl|curl -s -o /dev/null" "wget|wget -q -O /dev/null")

log "measuring peak RSS ($RSS_RUNS runs each)"
echo "## Peak RSS (KiB, median of $RSS_RUNS runs of /usr/bin/time -f %M)"
echo
echo "| command | big ($SIZE_MIB MiB) | mid (1 MiB) |"
echo "|---|---|---|"
for row in "${rss_rows[@]}"; do
    name=${row%%|*}
    read -r -a cmd <<<"${row#*|}"
    big=$(peak_rss "${cmd[@]}" "$BASE/big")
    mid=$(peak_rss "${cmd[@]}" "$BASE/mid")
    echo "| $name | $big | $mid |"
done
echo
echo "Ran in ${SECONDS} s."
