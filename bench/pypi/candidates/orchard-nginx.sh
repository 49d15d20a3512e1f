# orchard-nginx: the same `orchard serve` as candidates/orchard.sh (embedded default, empty data directory,
# proxying the local upstream) on 127.0.0.1:$ORCHARD_BACKEND_PORT, behind nginx on 127.0.0.1:$ORCHARD_NGINX_PORT
# configured from the operators' server block, docs/nginx/orchard.conf, with ORCHARD_ACCEL_REDIRECT set: nginx
# sends stored files (sendfile), Orchard answers everything else. One nginx worker. Measured at /pypi/simple/
# through nginx; its RSS and CPU are those of the whole tree (nginx master + worker + orchard).
CAND_KIND=proxy
ORCHARD_BIN=${ORCHARD_BIN:-$REPO_DIR/.venv/bin/orchard}
ORCHARD_BACKEND_PORT=${ORCHARD_BACKEND_PORT:-18005}
ORCHARD_NGINX_PORT=${ORCHARD_NGINX_PORT:-18006}
cand_install() {
    ensure_apt nginx nginx
    [ -x "$ORCHARD_BIN" ] || { log "orchard not found: $ORCHARD_BIN (make setup, or set ORCHARD_BIN)"; return 1; }
    port_free "$ORCHARD_BACKEND_PORT" || { log "port $ORCHARD_BACKEND_PORT is in use"; return 1; }
    port_free "$ORCHARD_NGINX_PORT" || { log "port $ORCHARD_NGINX_PORT is in use"; return 1; }
}
cand_start() {
    local ngx=$STATE/nginx kind
    mkdir -p "$ngx" "$STATE/data/blobs"
    {
        echo "user root; worker_processes 1; pid $ngx/nginx.pid; error_log $ngx/error.log warn;"
        echo "events { worker_connections 1024; }"
        echo "http {"
        echo "    access_log off; default_type application/octet-stream; keepalive_requests 100000;"
        for kind in client_body proxy fastcgi uwsgi scgi; do echo "    ${kind}_temp_path $ngx/$kind;"; done
        sed -e "s|@LISTEN@|127.0.0.1:$ORCHARD_NGINX_PORT|" -e "s|@ORCHARD@|127.0.0.1:$ORCHARD_BACKEND_PORT|" \
            -e "s|@BLOBS@|$STATE/data/blobs|" "$REPO_DIR/docs/nginx/orchard.conf"
        echo "}"
    } >"$ngx/nginx.conf"
    (
        cd "$STATE" || exit 1
        export ORCHARD_DATA_DIR=$STATE/data ORCHARD_UPSTREAM_PYPI_URL=$UPSTREAM_URL \
            ORCHARD_ADMIN_PASSWORD=bench-admin-password ORCHARD_LOG_LEVEL=${ORCHARD_LOG_LEVEL:-WARNING} \
            ORCHARD_ACCEL_REDIRECT=/_orchard/blobs/ ORCHARD_BIN NGX=$ngx ORCHARD_BACKEND_PORT
        # One process group: orchard in the background, then this shell becomes nginx (its parent).
        bg_start orchard-nginx "$STATE/server.log" bash -c 'env -u ORCHARD_DATABASE_URL \
            -u ORCHARD_STORAGE_URL -u ORCHARD_REDIS_URL -u ORCHARD_CONFIG_FILE \
            "$ORCHARD_BIN" serve --host 127.0.0.1 --port "$ORCHARD_BACKEND_PORT" &
            exec nginx -e "$NGX/error.log" -p "$NGX/" -c "$NGX/nginx.conf" -g "daemon off;"'
    )
    wait_http "http://127.0.0.1:$ORCHARD_BACKEND_PORT/health" 120 orchard-nginx &&
        wait_http "http://127.0.0.1:$ORCHARD_NGINX_PORT/health" 20 orchard-nginx
}
cand_url() { echo "http://127.0.0.1:$ORCHARD_NGINX_PORT/pypi/simple/"; }
cand_version() {
    local rev
    rev=$(git -C "$REPO_DIR" rev-parse --short HEAD 2>/dev/null || echo '?')
    git -C "$REPO_DIR" diff --quiet HEAD -- src docs/nginx 2>/dev/null || rev="$rev+uncommitted changes"
    echo "orchard $rev behind $(nginx -v 2>&1 | sed 's|.*nginx/|nginx |') (docs/nginx/orchard.conf, X-Accel-Redirect)"
}
