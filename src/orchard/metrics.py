"""Prometheus metrics and the ASGI middleware that feeds them.

The middleware also enforces the request body limit: a declared
Content-Length above it is refused at once (413), and a body that grows past
it while streaming ends the request with the same error.
"""

from __future__ import annotations

import time
from typing import Any

import fastapi.routing
from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REGISTRY = CollectorRegistry(auto_describe=True)

REQUESTS = Counter(
    "orchard_http_requests_total",
    "HTTP requests",
    ["method", "route", "status"],
    registry=REGISTRY,
)
LATENCY = Histogram(
    "orchard_http_request_duration_seconds",
    "Time to answer a request",
    ["method", "route"],
    registry=REGISTRY,
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
BYTES_IN = Counter("orchard_http_bytes_in_total", "Request body bytes received", registry=REGISTRY)
BYTES_OUT = Counter("orchard_http_bytes_out_total", "Artifact bytes sent", registry=REGISTRY)
UPLOADS = Counter("orchard_uploads_total", "Files stored", ["result"], registry=REGISTRY)
DEDUP_HITS = Counter(
    "orchard_dedup_hits_total", "Uploads whose bytes were already stored", registry=REGISTRY
)
DEDUP_BYTES = Counter(
    "orchard_dedup_bytes_saved_total",
    "Bytes not stored thanks to deduplication",
    registry=REGISTRY,
)
CACHE_REQUESTS = Counter(
    "orchard_cache_requests_total", "Cache lookups", ["backend", "result"], registry=REGISTRY
)
NEAR_HITS = Counter(
    "orchard_near_cache_hits_total",
    "Protocol reads answered from the near cache (near_cache.py)",
    registry=REGISTRY,
)
GC_FREED = Counter("orchard_gc_freed_bytes_total", "Bytes freed by gc", registry=REGISTRY)

# Requests whose bodies are files: they may be as large as max_upload_size.
# Everything else (JSON) is held to SMALL_BODY_LIMIT.
PROTOCOL_PREFIXES = ("/pypi/", "/npm/", "/go/")
SMALL_BODY_LIMIT = 1024 * 1024


def carries_a_file(method: str, path: str) -> bool:
    if path.startswith(PROTOCOL_PREFIXES):
        return True
    if not path.startswith("/api/v1/"):
        return False
    if method == "PUT" and "/files/" in path:
        return True
    if method == "POST" and path.startswith("/api/v1/project/") and path.endswith("/upload"):
        return True
    return method == "PATCH" and path.startswith("/api/v1/uploads/")


# FastAPI >= 0.137 keeps included routers as a tree; older ones copy prefixed routes.
_iter_route_contexts = getattr(fastapi.routing, "iter_route_contexts", None)


class RouteTemplates:
    """Full path templates (with include_router prefixes) of an app's routes.

    Since FastAPI 0.137 ``scope["route"]`` is the route as declared in its
    APIRouter, without the prefix it was included under ("/projects" instead
    of "/api/v1/projects"), so labels from it collide across prefixes. The
    route contexts know the full template; they are indexed once per set of
    routes and matched by route identity (and path, for a route included
    under several prefixes).
    """

    def __init__(self) -> None:
        self._count = -1
        self._by_route: dict[int, list[tuple[Any, str]]] = {}

    def _index(self, routes: list[Any]) -> None:
        self._by_route = {}
        if _iter_route_contexts is not None:
            for ctx in _iter_route_contexts(routes):
                template = getattr(ctx, "path_format", None)
                if template:
                    entry = (getattr(ctx, "path_regex", None), str(template))
                    self._by_route.setdefault(id(ctx.original_route), []).append(entry)
        self._count = len(routes)

    def label(self, scope: Scope) -> str:
        route = scope.get("route")
        if route is None:
            return "unmatched"
        app = scope.get("app")
        routes = getattr(getattr(app, "router", None), "routes", None)
        if isinstance(routes, list):
            if len(routes) != self._count:
                self._index(routes)
            candidates = self._by_route.get(id(route), [])
            if len(candidates) == 1:
                return candidates[0][1]
            path = str(scope.get("path", ""))
            root = str(scope.get("root_path", ""))
            if root and path.startswith(root):
                path = path[len(root) :]
            for regex, template in candidates:
                if regex is not None and regex.match(path):
                    return template
        declared = getattr(route, "path_format", None) or getattr(route, "path", None)
        return str(declared) if declared else "unmatched"


class MetricsMiddleware:
    """Counts requests, latency and body bytes; enforces body size limits."""

    def __init__(self, app: ASGIApp, max_body: int) -> None:
        self.app = app
        self.max_body = max_body
        self.routes = RouteTemplates()

    def _limit(self, method: str, path: str) -> int:
        return self.max_body if carries_a_file(method, path) else SMALL_BODY_LIMIT

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit(scope["method"], scope["path"])
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _refuse(send, limit)
            return
        received = 0
        status = 500
        started = time.perf_counter()

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                body: bytes = message.get("body", b"")
                received += len(body)
                BYTES_IN.inc(len(body))
                if received > limit:
                    # An HTTPException, not TooLarge: FastAPI turns any other error
                    # raised while it parses a JSON body into a 400.
                    raise HTTPException(413, f"request body exceeds the limit of {limit} bytes")
            return message

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, counting_receive, recording_send)
        finally:
            route = self.routes.label(scope)
            REQUESTS.labels(scope["method"], route, str(status)).inc()
            LATENCY.labels(scope["method"], route).observe(time.perf_counter() - started)


def _content_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", []):
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _refuse(send: Send, limit: int) -> None:
    body = (
        b'{"error":{"code":"too_large","message":"request body exceeds the limit of '
        + str(limit).encode()
        + b' bytes"}}'
    )
    headers: list[Any] = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})
