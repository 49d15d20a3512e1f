#!/usr/bin/env bash
# Everything CI checks, in one command:
#
#   setup (.venv + orchard[dev] + the web UI's build) -> services (PostgreSQL,
#   Redis) -> ruff -> mypy -> vitest (the UI's component tests) -> pytest on
#   the embedded stack -> pytest on the production stack
#
# Every step runs even when an earlier one failed (except that nothing runs
# without a working setup, and the production stack needs the services), so
# one run shows everything that is wrong. Exits non-zero if anything failed;
# pytest's "no tests collected" (exit 5) is a failure too.
#
# The last line is a plain summary over the vitest run and both pytest runs:
#   orchard: N passed, N failed, N skipped
# where "failed" also counts each failed non-test step (setup, services,
# ruff, mypy) and each vitest or pytest run that ended abnormally (no tests,
# crash, timeout) as one, so it reads "0 failed" exactly when the exit code is 0.
#
# Arguments are passed to both pytest runs (e.g. scripts/test.sh -x -k upload).
# Knobs: ORCHARD_TEST_STACKS ("embedded production"), ORCHARD_TEST_TIMEOUT
# (seconds per pytest run, default 1800).
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

STACKS="${ORCHARD_TEST_STACKS:-embedded production}"
PYTEST_TIMEOUT="${ORCHARD_TEST_TIMEOUT:-1800}"
PYTEST_ARGS=("$@")

# The suite configures Orchard itself: settings from the caller's shell
# (ORCHARD_DATABASE_URL, ORCHARD_REDIS_URL, ...) must not leak into it.
while read -r var; do
    [[ "$var" == ORCHARD_TEST_* ]] || unset "$var"
done < <(compgen -e | grep '^ORCHARD_' || true)

REPORTS="$(mktemp -d "${TMPDIR:-/tmp}/orchard-test.XXXXXX")"
trap 'rm -rf "$REPORTS"' EXIT

passed=0
failed=0
skipped=0
failed_steps=()
lines=()

record() {  # record NAME RESULT
    lines+=("$(printf '  %-20s %s' "$1" "$2")")
}

banner() { printf '\n==> %s\n' "$*"; }

step() {  # step NAME COMMAND...   a check that is not a test run
    local name=$1 start=$SECONDS rc
    shift
    banner "$name: $*"
    "$@"
    rc=$?
    if ((rc == 0)); then
        record "$name" "ok ($((SECONDS - start))s)"
        return 0
    fi
    record "$name" "FAILED (exit $rc, $((SECONDS - start))s)"
    failed_steps+=("$name")
    failed=$((failed + 1))
    return "$rc"
}

skip_step() {  # skip_step NAME REASON   a step that could not run counts as failed
    record "$1" "NOT RUN ($2)"
    failed_steps+=("$1")
    failed=$((failed + 1))
}

junit_counts() {  # junit_counts FILE -> "passed failed skipped"
    [[ -s "$1" ]] || { echo "0 0 0"; return; }
    .venv/bin/python - "$1" <<'PY' 2>/dev/null || echo "0 0 0"
import sys
import xml.etree.ElementTree as ET

root = ET.parse(sys.argv[1]).getroot()
suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
tests = failures = skipped = 0
for suite in suites:
    tests += int(suite.get("tests", 0))
    failures += int(suite.get("failures", 0)) + int(suite.get("errors", 0))
    skipped += int(suite.get("skipped", 0))
print(tests - failures - skipped, failures, skipped)
PY
}

run_pytest() {  # run_pytest STACK
    local stack=$1 name="pytest $1" xml="$REPORTS/$1.xml" start=$SECONDS rc p f s why
    banner "$name: ORCHARD_TEST_STACK=$stack python -m pytest ${PYTEST_ARGS[*]}"
    ORCHARD_TEST_STACK="$stack" timeout --kill-after=30 "$PYTEST_TIMEOUT" \
        .venv/bin/python -m pytest --junitxml="$xml" "${PYTEST_ARGS[@]}"
    rc=$?
    read -r p f s < <(junit_counts "$xml")
    passed=$((passed + p))
    skipped=$((skipped + s))
    failed=$((failed + f))
    case $rc in
        0) record "$name" "$p passed, $f failed, $s skipped ($((SECONDS - start))s)"; return 0 ;;
        5) why="no tests collected" ;;
        124 | 137) why="timed out after ${PYTEST_TIMEOUT}s" ;;
        *) why="exit $rc" ;;
    esac
    # A run that failed without a failed test (no tests, crash, timeout,
    # internal error) still counts as one failure.
    if ((f == 0)); then failed=$((failed + 1)); fi
    record "$name" "FAILED ($why; $p passed, $f failed, $s skipped; $((SECONDS - start))s)"
    failed_steps+=("$name")
    return "$rc"
}

run_vitest() {  # the web UI's component tests, counted like a pytest run
    local name=vitest xml="$REPORTS/vitest.xml" start=$SECONDS rc p f s
    banner "$name: (cd frontend && npx vitest run)"
    (cd frontend && timeout --kill-after=10 600 npx --no-install vitest run \
        --reporter=default --reporter=junit --outputFile.junit="$xml")
    rc=$?
    read -r p f s < <(junit_counts "$xml")
    passed=$((passed + p))
    skipped=$((skipped + s))
    failed=$((failed + f))
    if ((rc == 0 && p > 0)); then
        record "$name" "$p passed, $f failed, $s skipped ($((SECONDS - start))s)"
        return 0
    fi
    if ((f == 0)); then failed=$((failed + 1)); fi
    record "$name" "FAILED (exit $rc; $p passed, $f failed, $s skipped; $((SECONDS - start))s)"
    failed_steps+=("$name")
    return 1
}

if step setup bash scripts/setup.sh; then
    services_ok=1
    step services bash scripts/services.sh || services_ok=0
    step ruff .venv/bin/ruff check src tests
    step mypy .venv/bin/mypy
    run_vitest
    for stack in $STACKS; do
        if [[ "$stack" == production && $services_ok == 0 ]]; then
            skip_step "pytest $stack" "PostgreSQL/Redis not available"
            continue
        fi
        run_pytest "$stack"
    done
else
    for name in ruff mypy vitest; do skip_step "$name" "setup failed"; done
    for stack in $STACKS; do skip_step "pytest $stack" "setup failed"; done
fi

banner "summary"
printf '%s\n' "${lines[@]}"
if ((${#failed_steps[@]})); then
    echo "FAILED: ${failed_steps[*]}"
    status=1
else
    echo "OK: every step passed"
    status=0
fi
echo "orchard: $passed passed, $failed failed, $skipped skipped"
exit "$status"
