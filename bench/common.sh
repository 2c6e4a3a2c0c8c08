# shellcheck shell=bash
# Shared by the bench scripts (sourced, not run): messages, the tools they
# install from Debian, and their private nginx. Set TAG before sourcing it;
# stop_nginx and start_nginx use NGINX and WORK, and set or read nginx_started.

log() { printf '[%s] %s\n' "$TAG" "$*" >&2; }
die() { printf '[%s] error: %s\n' "$TAG" "$*" >&2; exit 1; }
is_uint() { [[ $1 =~ ^[1-9][0-9]*$ ]]; }

as_root() {
    if [[ $(id -u) -eq 0 ]]; then
        "$@"
    else
        sudo "$@"
    fi
}

# nginx lives in /usr/sbin, which an ordinary user's PATH may lack.
find_nginx() {
    command -v nginx 2>/dev/null || { [[ -x /usr/sbin/nginx ]] && echo /usr/sbin/nginx; } || true
}

# Installs the Debian packages named, if any.
install_missing() {
    (($# > 0)) || return 0
    log "installing: $*"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
    # RUNLEVEL=1 keeps invoke-rc.d from starting the packaged nginx service: the
    # scripts never use it, they start their own.
    as_root env DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 \
        apt-get install -y -q --no-install-recommends "$@" >&2
}

# N free loopback ports, space-separated.
free_ports() {
    python3 -c '
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))' "$1"
}

# Starts nginx from $WORK/nginx.conf and waits (at most 5 s) until URL answers.
start_nginx() {
    # -e: the error log before the configuration is read, so that nginx never touches /var/log.
    "$NGINX" -c "$WORK/nginx.conf" -p "$WORK" -e "$WORK/error.log" >&2
    nginx_started=1
    local i
    for i in $(seq 50); do
        curl -sf -o /dev/null "$1" && return 0
        ((i < 50)) || { cat "$WORK/error.log" >&2 || true; die "nginx does not serve $1"; }
        sleep 0.1
    done
}

# Stops the nginx that start_nginx started, if it did, and waits for it to go.
stop_nginx() {
    ((${nginx_started:-0})) && [[ -s $WORK/nginx.pid ]] || return 0
    local pid
    pid=$(cat "$WORK/nginx.pid")
    "$NGINX" -s stop -c "$WORK/nginx.conf" -p "$WORK" -e "$WORK/error.log" 2>/dev/null || kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
}
