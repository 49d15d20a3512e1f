# devpi-server (waitress, its defaults): root/pypi created by hand as a mirror of the local upstream;
# --no-root-pypi means devpi never learns about any public index.
CAND_KIND=proxy
cand_install() { venv_require "devpi-server==$DEVPI_SERVER_VERSION" "devpi-client==$DEVPI_CLIENT_VERSION"; }
cand_start() {
    timeout 120 "$VENV/bin/devpi-init" --serverdir "$STATE/server" --no-root-pypi >"$STATE/init.log" 2>&1 || return 1
    bg_start devpi "$STATE/server.log" \
        "$VENV/bin/devpi-server" --serverdir "$STATE/server" --host 127.0.0.1 --port "$DEVPI_PORT"
    wait_http "http://127.0.0.1:$DEVPI_PORT/+api" 120 devpi || return 1
    local dc=(timeout 60 "$VENV/bin/devpi" --clientdir "$STATE/client")
    { "${dc[@]}" use "http://127.0.0.1:$DEVPI_PORT/" &&
      "${dc[@]}" login root --password '' &&
      "${dc[@]}" index -c root/pypi type=mirror "mirror_url=$UPSTREAM_URL"; } >"$STATE/client.log" 2>&1
}
cand_url()     { echo "http://127.0.0.1:$DEVPI_PORT/root/pypi/+simple/"; }
cand_version() { echo "devpi-server $(venv_version devpi-server)"; }
