# shellcheck shell=bash
# Settings and helpers for run.sh and candidates/*.sh.  Sourced, not executed.
#
# Everything outside the repo lives under /tmp; each location and port can be moved with an
# environment variable (defaults are those of the company's shared harness, so both can share the
# corpus and the venv, and scripts that read /tmp/bench-run/results/*.json keep working).

BENCH_DIR=${BENCH_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
REPO_DIR=$(cd "$BENCH_DIR/../.." && pwd)
RUN_DIR=${BENCH_RUN_DIR:-/tmp/bench-run}            # logs, pids, per-candidate state, raw results
VENV=${BENCH_VENV:-/tmp/bench-venv}                 # throwaway venv: the peers, and pip as the client
PY=$VENV/bin/python
WHEELS=${BENCH_WHEELS:-/tmp/bench-wheels}           # the corpus (pins.txt), downloaded once
UPSTREAM_DIR=${BENCH_UPSTREAM_DIR:-/tmp/bench-upstream}  # generated static simple index over $WHEELS

NGINX_PORT=${BENCH_NGINX_PORT:-18000}               # static index + files: upstream of every proxy, the limit
DEVPI_PORT=${BENCH_DEVPI_PORT:-18001}
PROXPI_PORT=${BENCH_PROXPI_PORT:-18002}
PYPISERVER_PORT=${BENCH_PYPISERVER_PORT:-18003}
ORCHARD_PORT=${ORCHARD_PORT:-18004}
UPSTREAM_URL=http://127.0.0.1:$NGINX_PORT/simple/

# Pinned versions of what goes into the throwaway venv (installs are idempotent).
PIP_VERSION=26.3
DEVPI_SERVER_VERSION=6.20.3
DEVPI_CLIENT_VERSION=7.3.0
PROXPI_VERSION=1.3.1
PYPISERVER_VERSION=2.4.2
GUNICORN_VERSION=27.0.1

log() { echo "[$(date +%T)] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# pip with this machine's pip configuration ignored (it adds find-links, extra indexes and a
# constraints file): installs and the corpus come from pip's default index, nothing else.
# Bounded by BENCH_PIP_TIMEOUT seconds (900).
isolated_pip() {
    timeout "${BENCH_PIP_TIMEOUT:-900}" env -u PIP_FIND_LINKS -u PIP_EXTRA_INDEX_URL -u PIP_INDEX_URL -u PIP_CONSTRAINT -u PIP_REQUIREMENT \
        PIP_CONFIG_FILE=/dev/null PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_CACHE_DIR=/tmp/bench-pip-cache \
        "$PY" -m pip "$@"
}

_apt_updated=
ensure_apt() { # ensure_apt CMD PKG... : apt-get install PKG... unless CMD is on PATH
    local cmd=$1; shift
    command -v "$cmd" >/dev/null 2>&1 && return 0
    log "installing $* (apt-get)"
    if [ -z "$_apt_updated" ]; then timeout 300 apt-get update -qq >&2 || die "apt-get update failed"; _apt_updated=1; fi
    DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq "$@" >&2 || die "apt-get install $* failed"
}

ensure_venv() {
    if [ ! -x "$PY" ]; then
        log "creating venv $VENV"
        timeout 300 python3 -m venv "$VENV" || die "python3 -m venv $VENV failed"
    fi
    if [ "$("$PY" -m pip --version | awk '{print $2}')" != "$PIP_VERSION" ]; then
        isolated_pip install -q "pip==$PIP_VERSION" >&2 || die "pip upgrade"
    fi
}

# venv_require DIST==VER... : install into the venv unless already at that version
venv_require() {
    local missing=() spec name ver have
    for spec in "$@"; do
        name=${spec%%==*}; name=${name%%\[*}; ver=${spec##*==}
        have=$("$PY" -c "import importlib.metadata as m, sys
try:
    print(m.version(sys.argv[1]))
except Exception:
    print('')" "$name")
        [ "$have" = "$ver" ] || missing+=("$spec")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    log "pip install ${missing[*]}"
    isolated_pip install -q "${missing[@]}" >&2 || die "pip install ${missing[*]}"
}

# venv_version DIST : the installed version in the venv (for the report)
venv_version() {
    "$PY" -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$1" 2>/dev/null || echo '?'
}

# the corpus: the exact files of pins.txt, downloaded once from pip's default index
ensure_wheels() {
    local want have
    want=$(grep -c '==' "$BENCH_DIR/pins.txt")
    have=$(find "$WHEELS" -maxdepth 1 -type f -name '*.whl' 2>/dev/null | wc -l)
    if [ "$have" -ne "$want" ]; then
        log "downloading the $want pinned wheels into $WHEELS (have $have)"
        mkdir -p "$WHEELS"
        isolated_pip download -q --no-deps --only-binary=:all: --progress-bar off \
            -d "$WHEELS" -r "$BENCH_DIR/pins.txt" >&2 || die "pip download of the pinned wheels failed"
    fi
}

# ---- process control: every server runs in its own session, recorded as "PID STARTTIME" in
# $RUN_DIR/pids/NAME, and is stopped by that PID (= its process group) only while the recorded start
# time still matches (so a recycled PID is never signalled).
_starttime() { awk '{sub(/.*\) /, ""); print $20}' "/proc/$1/stat" 2>/dev/null; }

# bg_start NAME LOGFILE CMD... : start CMD detached in its own session
bg_start() {
    local name=$1 logf=$2 pid; shift 2
    mkdir -p "$RUN_DIR/pids"
    # XDG_CACHE_HOME: keep tools' incidental cache writes out of $HOME
    XDG_CACHE_HOME=${STATE:-$RUN_DIR}/xdg-cache setsid "$@" >"$logf" 2>&1 </dev/null &
    pid=$!
    echo "$pid $(_starttime "$pid")" >"$RUN_DIR/pids/$name"
}

pid_of() { local p; read -r p _ <"$RUN_DIR/pids/$1" 2>/dev/null && echo "$p"; }

# bg_stop NAME : SIGTERM the process group led by the recorded PID, SIGKILL after 15 s
bg_stop() {
    local name=$1 f=$RUN_DIR/pids/$1 pid start i
    [ -f "$f" ] || return 0
    read -r pid start <"$f" || true
    rm -f "$f"
    [ -n "$pid" ] || return 0
    if [ -n "$start" ] && [ "$(_starttime "$pid")" != "$start" ]; then
        # the leader is gone (or the PID was reused); signal what is left of its group, if anything
        kill -0 -- "-$pid" 2>/dev/null || return 0
        [ -z "$(_starttime "$pid")" ] || return 0
    fi
    kill -0 -- "-$pid" 2>/dev/null || return 0
    kill -TERM -- "-$pid" 2>/dev/null
    for i in $(seq 1 30); do kill -0 -- "-$pid" 2>/dev/null || return 0; sleep 0.5; done
    log "$name (process group $pid) did not stop on TERM; KILL"
    kill -KILL -- "-$pid" 2>/dev/null
}

stop_all() {
    local f
    for f in "$RUN_DIR"/pids/*; do
        [ -e "$f" ] || continue
        bg_stop "$(basename "$f")"
    done
}

# port_free PORT : true if nothing answers on 127.0.0.1:PORT
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_http URL [TIMEOUT_S] [NAME] [ANY] : poll until URL answers 2xx/3xx (with ANY=any: any HTTP
# status), bounded by TIMEOUT_S; fail early if NAME's process died
wait_http() {
    local url=$1 timeout=${2:-60} name=${3:-} any=${4:-} deadline code pid
    deadline=$(( $(date +%s) + timeout ))
    while [ "$(date +%s)" -lt "$deadline" ]; do
        code=$(curl -s -o /dev/null -m 5 -w '%{http_code}' "$url" 2>/dev/null)
        case "$code" in 2??|3??) return 0 ;; [1-5]??) [ -n "$any" ] && return 0 ;; esac
        if [ -n "$name" ]; then
            pid=$(pid_of "$name")
            if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then log "$name exited during startup"; return 1; fi
        fi
        sleep 0.5
    done
    log "timeout waiting for $url"
    return 1
}

# nginx: the static index + files on 127.0.0.1:$NGINX_PORT (config rendered from nginx/bench.conf)
start_nginx() {
    local conf=$RUN_DIR/nginx/nginx.conf
    mkdir -p "$RUN_DIR/nginx"
    port_free "$NGINX_PORT" || die "port $NGINX_PORT is in use (BENCH_NGINX_PORT to move it)"
    sed -e "s|@RUN_DIR@|$RUN_DIR|g" -e "s|@UPSTREAM_DIR@|$UPSTREAM_DIR|g" -e "s|@WHEELS@|$WHEELS|g" \
        -e "s|@PORT@|$NGINX_PORT|g" -e "s|@WORKERS@|$(nproc)|g" "$BENCH_DIR/nginx/bench.conf" >"$conf"
    bg_start nginx "$RUN_DIR/nginx/stdout.log" \
        nginx -e "$RUN_DIR/nginx/error.log" -p "$RUN_DIR/nginx/" -c "$conf" -g 'daemon off;'
    wait_http "${UPSTREAM_URL}requests/" 20 nginx || { cat "$RUN_DIR/nginx/error.log" >&2; die "nginx did not start"; }
}
