"""Write Orchard's OpenAPI document to frontend/openapi.json.

Run by ``npm run gen:api`` (which then turns it into
frontend/src/api/schema.d.ts with openapi-typescript). Usage:

    .venv/bin/python scripts/gen_openapi.py [OUTPUT]
"""

from __future__ import annotations

import sys
from pathlib import Path

from orchard.openapi import document_json

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "frontend" / "openapi.json"
    out.write_text(document_json(), encoding="utf-8")
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
