"""The web UI: the built single-page app (``ORCHARD_UI_DIR``) served at ``/``.

- ``/assets/…`` (file names carry a content hash): cached for a year, immutable;
- other files of the build (``favicon.svg``…): served as they are, cached briefly;
- every other path that is not reserved for the API or a protocol answers
  ``index.html`` (never cached), so a reload on any page of the app works;
- reserved prefixes (``/api``, ``/pypi``, ``/npm``, ``/go``, ``/health``,
  ``/metrics``) never reach the app: this route does not match them at all,
  so their own 404 and 405 answers are untouched;
- without a build, a short page says how to make one (not a 500);
- pages of the app carry the UI's content security policy (``default-src
  'self'``, no inline script: headers.py); every other answer, the build's
  other files included, keeps the strict default.

``install(app)`` runs last in ``create_app``, after every API and protocol router.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.responses import FileResponse, HTMLResponse
from starlette.routing import Match, Route
from starlette.types import Scope

from orchard.headers import UI_POLICY

RESERVED_PREFIXES = ("/api", "/pypi", "/npm", "/go", "/health", "/metrics")

IMMUTABLE = "public, max-age=31536000, immutable"
SHORT = "public, max-age=3600"
NO_CACHE = "no-cache"
# The short page without a build: no script at all, its own inline styles.
NOT_BUILT_POLICY = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"

NOT_BUILT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Orchard</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 3rem auto;
padding: 0 1rem; line-height: 1.5">
<h1>Orchard is running, but its web UI is not built</h1>
<p>The REST API works: <a href="/api/v1/docs">/api/v1/docs</a>, and
<a href="/health">/health</a>.</p>
<p>To build the UI, run <code>scripts/setup.sh</code> from the source checkout (or
<code>cd frontend &amp;&amp; npm ci &amp;&amp; npm run build</code>), then reload this page.
Orchard looks for it in <code>{ui_dir}</code> (setting <code>ORCHARD_UI_DIR</code>).</p>
</body></html>
"""


def is_reserved(path: str) -> bool:
    return any(path == p or path.startswith(p + "/") for p in RESERVED_PREFIXES)


class UiRoute(Route):
    """A catch-all route that never matches a reserved path."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] == "http" and is_reserved(scope.get("path", "")):
            return Match.NONE, {}
        return super().matches(scope)


def build_file(ui_dir: Path, path: str) -> Path | None:
    """The file of the build at ``path``, if there is one (never outside it)."""
    if not path or path.endswith("/"):
        return None
    root = ui_dir.resolve()
    candidate = (root / path.lstrip("/")).resolve()
    if not candidate.is_relative_to(root) or not candidate.is_file():
        return None
    return candidate


async def serve_ui(request: Request) -> Response:
    ui_dir: Path = request.app.state.settings.ui_dir
    index = ui_dir / "index.html"
    if not index.is_file():
        return HTMLResponse(
            NOT_BUILT.replace("{ui_dir}", str(ui_dir)),
            headers={"Content-Security-Policy": NOT_BUILT_POLICY},
        )
    path = request.path_params.get("path", "")
    found = build_file(ui_dir, path)
    if found is not None and found.name != "index.html":
        cache = IMMUTABLE if path.startswith("assets/") else SHORT
        return FileResponse(found, headers={"Cache-Control": cache})
    if path.startswith("assets/"):  # a stale hashed asset: no HTML in its place
        return Response("not found", status_code=404, media_type="text/plain")
    return FileResponse(
        index,
        media_type="text/html",
        headers={"Cache-Control": NO_CACHE, "Content-Security-Policy": UI_POLICY},
    )


def install(app: FastAPI) -> None:
    """Add the UI's catch-all route; call it after every other router."""
    app.router.routes.append(
        UiRoute("/{path:path}", serve_ui, methods=["GET", "HEAD"], include_in_schema=False)
    )
