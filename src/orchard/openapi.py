"""Orchard's OpenAPI document, rendered deterministically (sorted keys).

The web UI's typed API client is generated from this text
(``frontend/openapi.json``, via ``npm run gen:api``); a unit test checks
that the committed copy is current.
"""

from __future__ import annotations

import json
from pathlib import Path

from orchard.settings import Settings


def document_json() -> str:
    """The OpenAPI document of ``create_app``, as stable JSON text."""
    from orchard.app import create_app

    # Settings that read nothing from the environment or a data directory:
    # the document describes routes, not a deployment.
    settings = Settings(data_dir=Path("/nonexistent-orchard-data"), log_json=False)
    document = create_app(settings).openapi()
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
