#!/usr/bin/env bash
# PyPI proxy benchmark harness (usually driven by ../pypi_proxy.sh).
#   bash bench/pypi/run.sh [--quick] [--report FILE] [--json FILE] [candidate...]
# Candidates are candidates/<name>.sh (default: devpi proxpi pypiserver orchard); nginx, the limit, is
# measured in every run, so the ratios of one report always come from one run.  Writes the markdown
# report to FILE (default $BENCH_RUN_DIR/report.md) and prints it.
# Env: BENCH_REPS (3), BENCH_COLD_REPS (3: cold downloads, each on a server started afresh with empty
# state; the report gives their median), BENCH_DURATION (10 s per wrk run), BENCH_MAX_MINUTES (40: each measuring step runs
# under `timeout` for the time left, later candidates are skipped); locations and ports: lib/common.sh.
set -uo pipefail
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export BENCH_DIR
# shellcheck source=lib/common.sh
source "$BENCH_DIR/lib/common.sh"

REPS=${BENCH_REPS:-3}
COLD_REPS=${BENCH_COLD_REPS:-3}
DURATION=${BENCH_DURATION:-10}
MAX_MINUTES=${BENCH_MAX_MINUTES:-40}
REPORT=
REPORT_JSON=
cands=()
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) REPS=1; COLD_REPS=${BENCH_COLD_REPS:-1}; DURATION=3 ;;
        --report) [ $# -ge 2 ] || die "--report needs a file"; REPORT=$2; shift ;;
        --json) [ $# -ge 2 ] || die "--json needs a file"; REPORT_JSON=$2; shift ;;
        -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
        -*) die "unknown option $1" ;;
        *) [ -f "$BENCH_DIR/candidates/$1.sh" ] || die "no candidate file candidates/$1.sh"
           case " ${cands[*]:-} " in *" $1 "*) ;; *) cands+=("$1") ;; esac ;;
    esac
    shift
done
[ ${#cands[@]} -gt 0 ] || cands=(devpi proxpi pypiserver orchard)
REPORT=${REPORT:-$RUN_DIR/report.md}
REPORT_JSON=${REPORT_JSON:-$RUN_DIR/report.json}

# ---- clean slate: stop what an interrupted earlier run left (by its recorded PIDs), wipe the run dir ----
case "$RUN_DIR" in
    /?*) ;;
    *) die "BENCH_RUN_DIR must be an absolute path other than / (is '$RUN_DIR')" ;;
esac
if [ -d "$RUN_DIR" ] && [ -n "$(ls -A "$RUN_DIR")" ] && [ ! -d "$RUN_DIR/pids" ] && [ ! -d "$RUN_DIR/results" ]; then
    die "$RUN_DIR is not empty and does not look like a benchmark run directory; not wiping it"
fi
stop_all
rm -rf "$RUN_DIR"
mkdir -p "$RUN_DIR/pids" "$RUN_DIR/state" "$RUN_DIR/results"
trap 'stop_all' EXIT
trap 'log "interrupted"; exit 130' INT TERM
T0=$(date +%s)
DEADLINE=$((T0 + MAX_MINUTES * 60))

# ---- tools, venv, corpus, upstream index ----
ensure_apt nginx nginx
ensure_apt wrk wrk
ensure_apt curl curl
ensure_venv
ensure_wheels
"$PY" "$BENCH_DIR/lib/gen_index.py" --wheels "$WHEELS" --out "$UPSTREAM_DIR" \
    --base-url "http://127.0.0.1:$NGINX_PORT" || die "index generation failed"
cat /proc/loadavg >"$RUN_DIR/loadavg.start"
start_nginx

run_list=(nginx)
for c in "${cands[@]}"; do [ "$c" = nginx ] || run_list+=("$c"); done
log "candidates: ${run_list[*]}; reps $REPS x ${DURATION}s; run dir $RUN_DIR"

run_candidate() {
    local name=$1 left
    (
        STATE=$RUN_DIR/state/$name
        mkdir -p "$STATE"
        cand_stop() { bg_stop "$name"; }
        cand_pid() { pid_of "$name"; }
        cand_version() { echo "$name"; }
        # shellcheck disable=SC1090
        source "$BENCH_DIR/candidates/$name.sh"
        log "== $name: install"
        cand_install || { log "$name: install failed"; exit 1; }
        url=$(cand_url)
        base=$(echo "$url" | sed -E 's|^(https?://[^/]+)/.*|\1/|')
        port=$(echo "$base" | sed -E 's|^https?://[^/:]+:([0-9]+)/$|\1|')
        if [ "$name" != nginx ] && ! port_free "$port"; then
            log "$name: port $port is already in use (another server?); skipping"; exit 1
        fi
        # Every cold download gets a server started afresh on empty state; the last start goes on
        # with the whole suite.
        fresh_start() {
            [ "$name" = nginx ] || find "$STATE" -mindepth 1 -delete
            log "== $name: start"
            if ! cand_start; then
                log "$name: start failed (log: $STATE/server.log)"; tail -20 "$STATE/server.log" >&2; cand_stop
                return 1
            fi
            if ! wait_http "$base" 120 "$name" any; then
                log "$name: not answering on $base"; tail -20 "$STATE/server.log" >&2; cand_stop; return 1
            fi
        }
        measure() {  # $1: result file; further arguments go to measure.py
            local out=$1 pid left
            shift
            pid=$(cand_pid)
            args=(--name "$name" --kind "$CAND_KIND" --url "$url" --out "$out"
                  --reps "$REPS" --duration "$DURATION" --pins "$BENCH_DIR/pins.txt" --wheels "$WHEELS"
                  --python "$PY" --version "$(cand_version)" "$@")
            [ -n "$pid" ] && args+=(--pid "$pid")
            [ "$name" = nginx ] || args+=(--ref-url "$UPSTREAM_URL")
            left=$((DEADLINE - $(date +%s)))
            timeout "$left" "$PY" "$BENCH_DIR/lib/measure.py" "${args[@]}" || log "$name: measure exited $?"
        }
        for rep in $(seq 2 "$COLD_REPS"); do
            fresh_start || exit 1
            log "== $name: cold download $rep of $COLD_REPS"
            measure "$RUN_DIR/results/$name.cold$rep.json" --cold-only
            cand_stop
        done
        fresh_start || exit 1
        log "== $name: measuring $url (pid $(cand_pid))"
        measure "$RUN_DIR/results/$name.json"
        log "== $name: stop"
        cand_stop
    ) || log "$name: FAILED"
}

for c in "${run_list[@]}"; do
    if [ $(( DEADLINE - $(date +%s) )) -lt 60 ]; then log "BENCH_MAX_MINUTES reached: skipping $c"; continue; fi
    run_candidate "$c"
done

cat /proc/loadavg >"$RUN_DIR/loadavg.end"
echo $(( $(date +%s) - T0 )) >"$RUN_DIR/wall_s"
stop_all
timeout 60 "$PY" "$BENCH_DIR/lib/report.py" --run-dir "$RUN_DIR" --wheels "$WHEELS" \
    --nginx-port "$NGINX_PORT" --python "$PY" --out "$REPORT" --json "$REPORT_JSON" \
    || die "report failed"
log "report: $REPORT (raw: $REPORT_JSON)"
