"""Rendering errors as ``{"error": {"code", "message"}}``."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from orchard.errors import (
    OrchardError,
    RangeNotSatisfiable,
    TooManyRequests,
    Unauthorized,
    status_for,
)

log = logging.getLogger("orchard.api")


def error_response(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


async def _orchard_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, OrchardError)
    status = status_for(exc)
    response = error_response(status, exc.code, exc.message)
    if isinstance(exc, RangeNotSatisfiable):
        response.headers["Content-Range"] = f"bytes */{exc.size}"
    if isinstance(exc, Unauthorized) and "x-requested-with" not in request.headers:
        # pip, uv and twine answer a Basic challenge with their credentials.
        # Scripted browser requests (the web UI sends X-Requested-With) get
        # none: a browser would open its own password dialog.
        response.headers["WWW-Authenticate"] = 'Basic realm="orchard"'
    if isinstance(exc, TooManyRequests):
        response.headers["Retry-After"] = str(exc.retry_after)
    if status >= 500:
        log.warning("request failed: %s", exc.message, extra={"event": "error", "code": exc.code})
    return response


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}.get(
        exc.status_code, "http_error"
    )
    response = error_response(exc.status_code, code, str(exc.detail))
    if exc.headers:
        response.headers.update(exc.headers)
    return response


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()))
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return error_response(422, "validation_error", "; ".join(parts) or "invalid request")


async def _incomplete_body(request: Request, exc: Exception) -> JSONResponse:
    # The client closed its side before the body was complete (fewer bytes
    # than its Content-Length, a malformed chunk, a cancelled upload). The
    # partial bytes were discarded on the way here; one line says so, and the
    # answer goes to a client that may still be listening.
    log.info(
        "request body ended early; answered 400",
        extra={
            "event": "incomplete_body",
            "method": request.method,
            "path": request.url.path,
        },
    )
    return error_response(
        400, "incomplete_body", "the request body ended before it was complete"
    )


async def _data_error(request: Request, exc: Exception) -> JSONResponse:
    # The database refused a value (out of its column's range, too long): bad
    # input that a check missed, not an outage. Logged, to be checked sooner.
    log.warning("database refused a value: %s", exc.__class__.__name__, extra={"event": "error"})
    return error_response(400, "invalid_input", "a value is out of the range the server accepts")


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    log.warning("database error: %s", exc.__class__.__name__, extra={"event": "error"})
    return error_response(503, "database_unavailable", "the database is unavailable")


async def _backend_error(request: Request, exc: Exception) -> JSONResponse:
    log.warning("backend error: %s", exc, extra={"event": "error"})
    return error_response(503, "unavailable", "a storage or database backend is unavailable")


async def _integrity_error(request: Request, exc: Exception) -> JSONResponse:
    # A constraint caught a race (e.g. a version deleted while a file was
    # being added to it): the client may retry.
    log.info("write conflicted with a concurrent change", extra={"event": "conflict"})
    return error_response(409, "conflict", "the resource changed concurrently; retry")


def install(app: FastAPI) -> None:
    app.add_exception_handler(OrchardError, _orchard_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(IntegrityError, _integrity_error)
    app.add_exception_handler(DataError, _data_error)
    app.add_exception_handler(ClientDisconnect, _incomplete_body)
    app.add_exception_handler(OperationalError, _database_error)
    app.add_exception_handler(DBAPIError, _database_error)
    app.add_exception_handler(OSError, _backend_error)
