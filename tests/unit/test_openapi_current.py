"""The web UI's API client is generated from a committed copy of the OpenAPI
document; this fails when the API changed and the copy was not regenerated."""

from __future__ import annotations

import json
from pathlib import Path

from orchard.openapi import document_json

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "frontend" / "openapi.json"
FIX = "regenerate it: cd frontend && npm run gen:api (then commit openapi.json and schema.d.ts)"


def test_committed_openapi_document_is_current() -> None:
    assert COMMITTED.is_file(), f"{COMMITTED} is missing; {FIX}"
    current = document_json()
    committed = COMMITTED.read_text(encoding="utf-8")
    if committed != current:
        old, new = json.loads(committed), json.loads(current)
        added = sorted(set(new["paths"]) - set(old["paths"]))
        removed = sorted(set(old["paths"]) - set(new["paths"]))
        raise AssertionError(
            f"frontend/openapi.json is stale (paths added {added}, removed {removed}); {FIX}"
        )


def test_document_is_deterministic() -> None:
    assert document_json() == document_json()


def test_generated_types_exist() -> None:
    schema = ROOT / "frontend" / "src" / "api" / "schema.d.ts"
    assert schema.is_file(), f"{schema} is missing; {FIX}"
    assert '"/api/v1/projects"' in schema.read_text(encoding="utf-8")
