# The limit: nginx serving the static PEP 503/691 index and files (it is also every proxy's upstream).
# run.sh starts it once per run (lib/common.sh start_nginx); nothing to start or stop here.
CAND_KIND=static
cand_install() { ensure_apt nginx nginx; }
cand_start()   { :; }
cand_stop()    { :; }
cand_url()     { echo "$UPSTREAM_URL"; }
cand_pid()     { pid_of nginx; }
cand_version() { nginx -v 2>&1 | sed 's|.*nginx/|nginx |'; }
