#!/usr/bin/env bash
# Create .venv (if missing) and install Orchard into it, editable, with the
# dev tools (pytest, ruff, mypy, moto...); then build the web UI
# (frontend/: npm ci + npm run build into frontend/dist, which `orchard serve`
# serves at /). Idempotent: a second run with an unchanged pyproject.toml and
# unchanged frontend sources does nothing. FORCE=1 reinstalls and rebuilds
# anyway; ORCHARD_SKIP_UI=1 skips the UI (the server then shows how to build it).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PYTHON="${PYTHON:-python3}"
VENV="$ROOT/.venv"
STAMP="$VENV/.orchard-installed"

if ! "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
    command -v "$PYTHON" >/dev/null || { echo "setup: $PYTHON not found (Python >= 3.11 needed)" >&2; exit 1; }
    "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
        || { echo "setup: $("$PYTHON" --version 2>&1) is too old; Orchard needs Python >= 3.11" >&2; exit 1; }
    echo "setup: creating $VENV" >&2
    "$PYTHON" -m venv "$VENV"
fi

want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [[ "${FORCE:-0}" != 1 && -x "$VENV/bin/orchard" && -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]]; then
    : # the Python side is current
else
    echo "setup: installing orchard[dev] into $VENV" >&2
    rm -f "$STAMP"
    # (The machine-wide pip configuration may name local indexes that do not
    # exist on every machine; pip warns about each one. Those lines are dropped.)
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e '.[dev]' 2>&1 \
        | { grep -v 'is ignored: it is neither a file nor a directory' || true; } >&2
    "$VENV/bin/orchard" --help >/dev/null || { echo "setup: .venv/bin/orchard does not run" >&2; exit 1; }
    echo "$want" >"$STAMP"
    echo "setup: python done" >&2
fi

# --- the web UI -------------------------------------------------------------
[[ "${ORCHARD_SKIP_UI:-0}" == 1 ]] && exit 0
UI="$ROOT/frontend"
DEPS_STAMP="$UI/node_modules/.orchard-deps"
BUILD_STAMP="$UI/node_modules/.orchard-build"

ui_hash() {  # everything the build reads
    (cd "$UI" && find package.json package-lock.json index.html vite.config.ts tsconfig.json src public \
        -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)
}

deps_want="$(sha256sum "$UI/package-lock.json" | cut -d' ' -f1)"
build_want="$(ui_hash)"
if [[ "${FORCE:-0}" != 1 && -f "$UI/dist/index.html" && -f "$BUILD_STAMP" \
      && "$(cat "$BUILD_STAMP")" == "$build_want" ]]; then
    exit 0
fi

command -v node >/dev/null && command -v npm >/dev/null || {
    echo "setup: node and npm are needed to build the web UI (Debian: apt-get install nodejs npm;" \
         "Node.js >= 20.19), or set ORCHARD_SKIP_UI=1" >&2
    exit 1
}
node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)' || {
    echo "setup: Node.js $(node --version) is too old for the web UI's build (Vite 8 needs >= 20.19)" >&2
    exit 1
}
if [[ "${FORCE:-0}" == 1 || ! -f "$DEPS_STAMP" || "$(cat "$DEPS_STAMP")" != "$deps_want" ]]; then
    echo "setup: npm ci in frontend/" >&2
    (cd "$UI" && npm ci --no-audit --no-fund --loglevel=error) >&2
    echo "$deps_want" >"$DEPS_STAMP"
fi
echo "setup: building the web UI (frontend/dist)" >&2
rm -f "$BUILD_STAMP"
(cd "$UI" && npm run --silent build) >&2
echo "$build_want" >"$BUILD_STAMP"
echo "setup: done" >&2
