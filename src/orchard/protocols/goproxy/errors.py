"""Go's error form: the message as ``text/plain`` (the go command prints up
to eight lines of an error body), with the status of the domain error."""

from __future__ import annotations

import logging

from fastapi import Request, Response
from fastapi.responses import PlainTextResponse

from orchard.errors import OrchardError, Unauthorized, status_for

log = logging.getLogger("orchard.api")


async def render_error(request: Request, exc: OrchardError) -> Response:
    status = status_for(exc)
    response = PlainTextResponse(f"{exc.message}\n", status_code=status)
    if isinstance(exc, Unauthorized):
        response.headers["WWW-Authenticate"] = 'Basic realm="orchard"'
    if status >= 500:
        log.warning("request failed: %s", exc.message, extra={"event": "error", "code": exc.code})
    return response
