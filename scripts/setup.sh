#!/usr/bin/env bash
# Create .venv (if missing) and install Orchard into it, editable, with the
# dev tools (pytest, ruff, mypy, moto...). Idempotent: a second run with an
# unchanged pyproject.toml does nothing. FORCE=1 reinstalls anyway.
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
    exit 0
fi

echo "setup: installing orchard[dev] into $VENV" >&2
rm -f "$STAMP"
# (The machine-wide pip configuration may name local indexes that do not
# exist on every machine; pip warns about each one. Those lines are dropped.)
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e '.[dev]' 2>&1 \
    | { grep -v 'is ignored: it is neither a file nor a directory' || true; } >&2
"$VENV/bin/orchard" --help >/dev/null || { echo "setup: .venv/bin/orchard does not run" >&2; exit 1; }
echo "$want" >"$STAMP"
echo "setup: done" >&2
