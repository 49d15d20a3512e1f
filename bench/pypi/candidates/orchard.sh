# orchard: this checkout's `orchard serve` (ORCHARD_BIN, default <repo>/.venv/bin/orchard) with an empty
# data directory (SQLite, blobs on disk, in-process cache: the embedded default) proxying the local
# upstream, on 127.0.0.1:$ORCHARD_PORT; measured at /pypi/simple/.  The caller's other ORCHARD_* variables
# pass through (e.g. to try a setting; ORCHARD_LOG_LEVEL defaults to WARNING) except those that would swap
# the embedded default for other backends (ORCHARD_DATABASE_URL, _STORAGE_URL, _REDIS_URL, _CONFIG_FILE).
# It runs in $STATE, so no orchard.toml of the caller's working directory is read.
#   ORCHARD_CMD  optional: another start command (runs via `bash -c "exec $ORCHARD_CMD"` in $STATE; it sees
#                BENCH_PORT, BENCH_STATE, BENCH_UPSTREAM, BENCH_WHEELS)
#   ORCHARD_URL  optional: its index URL (default http://127.0.0.1:$ORCHARD_PORT/pypi/simple/)
CAND_KIND=proxy
ORCHARD_BIN=${ORCHARD_BIN:-$REPO_DIR/.venv/bin/orchard}
cand_install() {
    [ -n "${ORCHARD_CMD:-}" ] || [ -x "$ORCHARD_BIN" ] ||
        { log "orchard not found: $ORCHARD_BIN (make setup, or set ORCHARD_BIN)"; return 1; }
}
cand_start() {
    local cmd=${ORCHARD_CMD:-'env -u ORCHARD_DATABASE_URL -u ORCHARD_STORAGE_URL -u ORCHARD_REDIS_URL \
        -u ORCHARD_CONFIG_FILE "$ORCHARD_BIN" serve --host 127.0.0.1 --port "$BENCH_PORT"'}
    (
        cd "$STATE" || exit 1
        ORCHARD_BIN=$ORCHARD_BIN BENCH_PORT=$ORCHARD_PORT BENCH_STATE=$STATE BENCH_UPSTREAM=$UPSTREAM_URL \
        BENCH_WHEELS=$WHEELS ORCHARD_DATA_DIR=$STATE/data ORCHARD_UPSTREAM_PYPI_URL=$UPSTREAM_URL \
        ORCHARD_ADMIN_PASSWORD=bench-admin-password ORCHARD_LOG_LEVEL=${ORCHARD_LOG_LEVEL:-WARNING} \
            bg_start orchard "$STATE/server.log" bash -c "exec $cmd"
    )
}
cand_url() { echo "${ORCHARD_URL:-http://127.0.0.1:$ORCHARD_PORT/pypi/simple/}"; }
cand_version() {
    local rev
    rev=$(git -C "$REPO_DIR" rev-parse --short HEAD 2>/dev/null || echo '?')
    git -C "$REPO_DIR" diff --quiet HEAD -- src 2>/dev/null || rev="$rev+uncommitted src changes"
    echo "orchard $rev ($ORCHARD_BIN), granian $("$(dirname "$ORCHARD_BIN")/python" -c \
        'import importlib.metadata as m; print(m.version("granian"))' 2>/dev/null || echo '?')"
}
