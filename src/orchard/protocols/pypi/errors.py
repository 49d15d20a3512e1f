"""PyPI's error form: the app's JSON error shape (``api/errors.py``), which
pip, uv and twine print as is, with the same headers (a Basic challenge on
401, Retry-After on 429, Content-Range on 416)."""

from __future__ import annotations

from fastapi import Request, Response

from orchard.errors import OrchardError


async def render_error(request: Request, exc: OrchardError) -> Response:
    handlers = request.app.exception_handlers
    for cls in type(exc).__mro__:
        if cls in handlers:
            response: Response = await handlers[cls](request, exc)
            return response
    raise exc  # no handler: the app's error middleware answers, as before
