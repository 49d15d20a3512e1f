# pypiserver: not a proxy -- serves $WHEELS itself (hosted); gunicorn as in its README with one sync
# worker per core, the watchdog-backed "cached-dir" backend, no fallback redirect to a public index.
CAND_KIND=hosted
cand_install() { venv_require "pypiserver[cache]==$PYPISERVER_VERSION" "gunicorn==$GUNICORN_VERSION"; }
cand_start() {
    bg_start pypiserver "$STATE/server.log" \
        "$VENV/bin/gunicorn" --no-control-socket -w "$(nproc)" --bind "127.0.0.1:$PYPISERVER_PORT" \
        "pypiserver:app(root='$WHEELS', disable_fallback=True)"
}
cand_url()     { echo "http://127.0.0.1:$PYPISERVER_PORT/simple/"; }
cand_version() { echo "pypiserver $(venv_version pypiserver), gunicorn $(venv_version gunicorn)"; }
