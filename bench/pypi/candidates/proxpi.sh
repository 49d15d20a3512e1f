# proxpi: Flask app under gunicorn with the arguments of its Docker image (one process, since its cache
# is per process; 2 threads; access log on).
CAND_KIND=proxy
cand_install() { venv_require "proxpi==$PROXPI_VERSION" "gunicorn==$GUNICORN_VERSION"; }
cand_start() {
    PROXPI_INDEX_URL="$UPSTREAM_URL" PROXPI_CACHE_DIR="$STATE/cache" \
    bg_start proxpi "$STATE/server.log" \
        "$VENV/bin/gunicorn" --no-control-socket --preload --access-logfile - \
        --access-logformat '%(h)s "%(r)s" %(s)s %(b)s %(M)dms' \
        --logger-class proxpi.server._GunicornLogger \
        --bind "127.0.0.1:$PROXPI_PORT" --threads 2 proxpi.server:app
}
cand_url()     { echo "http://127.0.0.1:$PROXPI_PORT/index/"; }
cand_version() { echo "proxpi $(venv_version proxpi), gunicorn $(venv_version gunicorn)"; }
