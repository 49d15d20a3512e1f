"""Security headers on every answer, and the rules for serving stored bytes.

Stored bytes must never run as active content on the UI's origin (issue 15,
point 1). Two layers make sure of it:

- ``secure(send, scope)`` wraps the ASGI ``send`` of every HTTP request once
  (``OrchardApp.__call__``): each answer gets ``X-Content-Type-Options:
  nosniff``, ``X-Frame-Options: DENY``, a ``Referrer-Policy`` and, unless its
  handler chose one, the strict ``Content-Security-Policy`` below (nothing
  may load, run or be framed; ``sandbox`` gives a document an opaque origin
  and no scripts, so even a page that rendered could not read the UI's
  cookies; it may still start downloads). The web UI's
  pages set their own policy (``UI_POLICY``, api/ui.py), and so does the
  OpenAPI page (``docs_page``). An answer that needed a credential (the scope
  says so: ``orchard.credentialed``, set by authentication) never goes out
  with ``Cache-Control: public``.
- downloads (api/downloads.py) are always ``Content-Disposition:
  attachment`` and go out with their stored type only when it is inert
  (``served_type``): HTML, SVG, XML, JavaScript, PDF and anything not known
  to be inert are sent as ``application/octet-stream``.

The wrapper is on the hot path: one pass over the answer's header names and
one list concatenation per answer, nothing per body chunk.

Orchard has no separate download origin (a setting for deployments that
want stored files viewed inline); every file is an attachment.
"""

from __future__ import annotations

import base64
import hashlib
import inspect
import re
from collections.abc import Iterable

from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from starlette.types import Message, Scope, Send

from orchard.auth.credentials import CREDENTIALED

# ``allow-downloads``: a file link on a page (a PyPI index seen in a browser) still downloads.
STRICT_POLICY = (
    "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none';"
    " sandbox allow-downloads"
)
UI_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
    " object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)

_CSP = b"content-security-policy"
_CACHE = b"cache-control"
_ALWAYS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
)
_WITH_POLICY = [*_ALWAYS, (_CSP, STRICT_POLICY.encode())]
_OURS = frozenset(name for name, _ in _WITH_POLICY)


def _private(value: bytes) -> bytes:
    """``value`` (a Cache-Control) that no shared cache may keep."""
    lowered = value.lower()
    if b"private" in lowered or b"no-store" in lowered:
        return value
    parts = [p.strip() for p in value.split(b",") if p.strip().lower() != b"public"]
    return b", ".join([b"private", *parts])


def _privately(headers: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """``headers`` with a Cache-Control that no shared cache may keep."""
    out = [(k, _private(v)) if k == _CACHE else (k, v) for k, v in headers]
    if not any(k == _CACHE for k, _ in out):
        out.append((_CACHE, b"private"))
    return out


def secure(send: Send, scope: Scope) -> Send:
    """``send`` for one HTTP request, adding the headers of the module
    docstring to the answer's start."""

    async def secure_send(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = message.get("headers", ())
            added = _WITH_POLICY
            for name, _ in headers:
                if name in _OURS:  # set by the handler (a page's own policy): its word stands
                    added = [h for h in added if h[0] != name]
            if scope.get(CREDENTIALED):
                headers = _privately(headers)
            message = {**message, "headers": [*headers, *added]}
        await send(message)

    return secure_send


# --- what a download may be sent as ------------------------------------------------------------

# Types a browser shows or saves but never runs; anything else is octet-stream.
_INERT = frozenset(
    {
        "application/octet-stream",
        "application/zip",
        "application/gzip",
        "application/x-gzip",
        "application/x-tar",
        "application/x-gtar",
        "application/x-bzip2",
        "application/x-xz",
        "application/zstd",
        "application/x-7z-compressed",
        "application/java-archive",
        "application/x-wheel+zip",
        "application/json",
        "text/plain",
        "text/csv",
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/webp",
    }
)


def served_type(stored: str | None) -> str:
    """The Content-Type a download goes out with: the stored one if it is
    inert, else ``application/octet-stream``."""
    if not stored:
        return "application/octet-stream"
    bare = stored.split(";", 1)[0].strip().lower()
    return bare if bare in _INERT else "application/octet-stream"


# --- the OpenAPI page --------------------------------------------------------------------------

_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def _default(name: str) -> str:
    value = inspect.signature(get_swagger_ui_html).parameters[name].default
    return str(value)


def docs_page(openapi_url: str, title: str) -> HTMLResponse:
    """FastAPI's Swagger UI page, with a policy that allows exactly what it
    loads: its script, style sheet and favicon at the exact URLs FastAPI
    names (read from FastAPI's own defaults, so they follow FastAPI), its one
    inline script (by hash), inline styles (Swagger UI sets some), and
    requests to this origin (the OpenAPI document, "Try it out")."""
    page = get_swagger_ui_html(openapi_url=openapi_url, title=title)
    body = bytes(page.body).decode()
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'"
        for s in _SCRIPT.findall(body)
    )
    script, style, icon = (
        _default(name) for name in ("swagger_js_url", "swagger_css_url", "swagger_favicon_url")
    )
    policy = (
        f"default-src 'none'; script-src {hashes} {script}; style-src {style} 'unsafe-inline';"
        f" img-src 'self' data: {icon}; connect-src 'self'; base-uri 'none';"
        " form-action 'none'; frame-ancestors 'none'"
    )
    return HTMLResponse(
        body, headers={"Content-Security-Policy": policy, "Cache-Control": "no-cache"}
    )
