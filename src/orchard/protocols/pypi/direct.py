"""The direct lane: anonymous reads of proxy pages and files that the near
cache could not answer, without FastAPI's routing and dependency injection.

A cold ``pip install`` asks for a page, then a file, one request at a time,
and every cache miss paid about half a millisecond for the framework before
the handler started and after it returned. For an anonymous ``GET`` (the
hot path has already checked: no credentials, no session, no conditional
header but ``If-None-Match``) of::

    /pypi/simple/{name}/               /pypi/{project}/simple/{name}/
    /pypi/{project}/upstream/{name}/{filename}

this calls the router's own functions (``answer_page``, ``answer_file``)
with the anonymous principal, maps errors through the application's own
exception handlers (the same JSON error bodies), and counts the request in
the metrics under the route it would have matched. Anything else, HEAD
included, goes through the application as before.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request, Response
from starlette.types import Message, Receive, Scope, Send

from orchard.auth.principal import Principal
from orchard.core import catalog
from orchard.metrics import LATENCY, REQUESTS
from orchard.protocols.hotpath import LANE_ROUTE
from orchard.protocols.pypi import router

_ALIAS_PAGE = re.compile(r"/pypi/simple/([^/]+)/")
_PAGE = re.compile(r"/pypi/([^/]+)/simple/([^/]+)/")
_FILE = re.compile(r"/pypi/([^/]+)/(upstream/[^/]+/[^/]+)")

Answer = Callable[[Request], Awaitable[Response]]
Handler = Callable[[Request, Exception], Awaitable[Response]]


def _match(scope: Scope) -> tuple[str, Answer] | None:
    """The route template FastAPI would match (the metrics label), and how
    to answer."""
    path: str = scope["path"]
    if found := _ALIAS_PAGE.fullmatch(path):
        name = found[1]
        return router.ALIAS + "/{name}/", lambda request: router.answer_page(
            request, _db(request), _anonymous(request), catalog.PROXY_PROJECT, name, router.ALIAS
        )
    if found := _PAGE.fullmatch(path):
        project, name = found[1], found[2]
        base = f"/pypi/{project}/simple"
        return router.INDEX + "/{name}/", lambda request: router.answer_page(
            request, _db(request), _anonymous(request), project, name, base
        )
    if (found := _FILE.fullmatch(path)) and found[1] != "simple":
        project, rest = found[1], found[2]
        return "/pypi/{project}/{path}", lambda request: router.answer_file(
            request, _db(request), _anonymous(request), project, rest
        )
    return None


def _db(request: Request) -> Any:
    return request.app.state.db


def _anonymous(request: Request) -> Principal:
    return Principal.anonymous(request.client.host if request.client else "")


class DirectLane:
    """Callable by the hot path with an anonymous read; answers it and says
    True, or says False and leaves the request to the application."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> bool:
        if scope["method"] != "GET":
            return False
        matched = _match(scope)
        if matched is None:
            return False
        route, answer = matched
        scope[LANE_ROUTE] = route  # the hot path keeps it with the answer (its metrics label)
        started = time.perf_counter()
        status = 500

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        request = Request(scope, receive)
        try:
            try:
                response = await answer(request)
            except Exception as exc:
                handler = _handler(scope["app"], exc)
                if handler is None:
                    raise
                response = await handler(request, exc)
            await response(scope, receive, recording_send)
        finally:
            REQUESTS.labels("GET", route, str(status)).inc()
            LATENCY.labels("GET", route).observe(time.perf_counter() - started)
        return True


def _handler(app: Any, exc: Exception) -> Handler | None:
    """The application's handler for ``exc`` (as its exception middleware
    would pick it: the nearest class in the exception's MRO)."""
    handlers = getattr(app, "exception_handlers", {})
    for cls in type(exc).__mro__:
        if cls in handlers:
            return handlers[cls]  # type: ignore[no-any-return]
    return None
