"""Prometheus metrics and the ASGI middleware that feeds them.

The middleware also enforces the request body limit: a declared
Content-Length above it is refused at once (413), and a body that grows past
it while streaming ends the request with the same error.
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from orchard.errors import TooLarge

REGISTRY = CollectorRegistry(auto_describe=True)

REQUESTS = Counter(
    "orchard_http_requests_total", "HTTP requests", ["method", "route", "status"],
    registry=REGISTRY,
)
LATENCY = Histogram(
    "orchard_http_request_duration_seconds", "Time to answer a request", ["method", "route"],
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
    "orchard_dedup_bytes_saved_total", "Bytes not stored thanks to deduplication",
    registry=REGISTRY,
)
CACHE_REQUESTS = Counter(
    "orchard_cache_requests_total", "Cache lookups", ["backend", "result"], registry=REGISTRY
)
GC_FREED = Counter("orchard_gc_freed_bytes_total", "Bytes freed by gc", registry=REGISTRY)

LARGE_BODY_PREFIXES = ("/api/v1/uploads", "/api/v1/project/", "/pypi/", "/npm/", "/go/")
SMALL_BODY_LIMIT = 1024 * 1024


def _route_of(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return str(path) if path else "unmatched"


class MetricsMiddleware:
    """Counts requests, latency and body bytes; enforces body size limits."""

    def __init__(self, app: ASGIApp, max_body: int) -> None:
        self.app = app
        self.max_body = max_body

    def _limit(self, path: str) -> int:
        return self.max_body if path.startswith(LARGE_BODY_PREFIXES) else SMALL_BODY_LIMIT

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit(scope["path"])
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
                    raise TooLarge(f"request body exceeds the limit of {limit} bytes")
            return message

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, counting_receive, recording_send)
        finally:
            route = _route_of(scope)
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
