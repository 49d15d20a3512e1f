"""The near cache as the application's outermost middleware.

For an anonymous ``GET``/``HEAD`` under a protocol prefix it looks the
request up by path, query, ``Accept`` and ``Host`` (pages carry absolute
links) in ``cache/near.py``; a hit is answered right here, a 304 when
``If-None-Match`` matches, without routing, database or rendering. A miss
goes through the application, and a plain ``200`` answer (a page body, or a
file handed to the server by path) is kept for the next request. Range and
other conditional requests, answers marked stale and everything with
credentials always go through the application: whether a request is
anonymous is decided by auth/credentials.py, the same code authentication
uses, and an answer is never kept when authentication saw a credential or
the answer says ``Cache-Control: private`` or ``no-store`` (headers.py
``secure`` decides that for credentialed answers). A file's path stays valid
while it is kept: the gc that deletes a blob also raises the content epoch.

What drops the cache is the content epoch (``cache/epoch.py``): a committed
change of what a read answers, on any replica or from the CLI. Other
methods are not writes by themselves: a refused or failed request (any
status of 400 and above) drops nothing. Before a write request that
succeeded is answered, the epoch is read once more, so that this process
never answers from its old copy after its own write.

Authenticated reads are not answered from here: checking a credential costs
database reads (an argon2 run for a password) that would dwarf the hit;
that needs issue 21's verified-credential cache, and the one pipeline it
prepares.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from orchard.auth.credentials import CREDENTIALED, presented
from orchard.cache.near import MAX_ENTRY_BYTES, NearCache
from orchard.metrics import BYTES_OUT, LATENCY, NEAR_HITS, REQUESTS, RouteTemplates

PREFIXES = ("/pypi/", "/npm/", "/go/")
READS = frozenset({"GET", "HEAD"})
PASSIVE = frozenset({"GET", "HEAD", "OPTIONS"})
# Request headers that make an answer depend on more than the URL.
_CONDITIONAL = frozenset(
    {b"range", b"if-range", b"if-modified-since", b"if-match", b"if-unmodified-since"}
)
_NOT_IN_304 = frozenset({b"content-length", b"content-type"})
# Bodies worth keeping: index pages and documents, not files.
PAGE_TYPES = (b"text/", b"application/json", b"application/vnd.")


def _etag_matches(header: bytes, etag: bytes) -> bool:
    bare = etag.strip(b'"')
    for tag in header.split(b","):
        tag = tag.strip()
        if tag.startswith(b"W/"):
            tag = tag[2:]
        tag = tag.strip(b'"')
        if tag == bare or tag == b"*":
            return True
    return False


class NearCacheMiddleware:
    """See the module docstring."""

    def __init__(self, app: ASGIApp, near: NearCache) -> None:
        self.app = app
        self.near = near
        self.routes = RouteTemplates()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.near.enabled:
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        if method not in READS:
            if method in PASSIVE:
                await self.app(scope, receive, send)
            else:
                await self.app(scope, receive, self._after_write(send))
            return
        path: str = scope["path"]
        if not path.startswith(PREFIXES):
            await self.app(scope, receive, send)
            return
        accept = host = if_none_match = None
        credentialed = False
        for name, value in scope["headers"]:
            if name == b"accept":
                accept = value
            elif name == b"host":
                host = value
            elif name == b"if-none-match":
                if_none_match = value
            elif name in _CONDITIONAL:
                await self.app(scope, receive, send)
                return
            elif name == b"authorization" or name == b"cookie":
                credentialed = True
        # Anonymous exactly as authentication decides it (auth/credentials.py).
        if (credentialed and presented(scope["headers"]).any) or not self.near.sync():
            await self.app(scope, receive, send)
            return
        key = (
            path,
            scope["query_string"],
            accept,
            host,
            scope.get("scheme"),
            scope.get("root_path"),
        )
        answer = self.near.get(key)
        if answer is None:
            await self._through(key, scope, receive, send)
            return
        started = time.perf_counter()
        if if_none_match is not None and answer.etag and _etag_matches(if_none_match, answer.etag):
            status = 304
            headers = [(k, v) for k, v in answer.headers if k not in _NOT_IN_304]
            await send({"type": "http.response.start", "status": 304, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
        else:
            status = 200
            await send({"type": "http.response.start", "status": 200, "headers": answer.headers})
            if method == "HEAD":
                await send({"type": "http.response.body", "body": b""})
            elif answer.path is not None:
                await send({"type": "http.response.pathsend", "path": answer.path})
                BYTES_OUT.inc(answer.length)
            else:
                await send({"type": "http.response.body", "body": answer.body})
        NEAR_HITS.inc()
        REQUESTS.labels(method, answer.route, str(status)).inc()
        LATENCY.labels(method, answer.route).observe(time.perf_counter() - started)

    def _after_write(self, send: Send) -> Send:
        """``send`` that, before a successful answer goes out, learns whether
        the request changed content (the epoch moved) and drops the cache if so."""

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] < 400:
                await self.near.refresh()
            await send(message)

        return sending

    async def _through(self, key: Any, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer through the application and keep a plain 200 answer."""
        generation = self.near.generation
        keep = scope["method"] == "GET"
        start: Message | None = None
        page = False
        chunks: list[bytes] = []
        size = 0
        path: str | None = None

        async def capture(message: Message) -> None:
            nonlocal keep, start, path, size, page
            if keep:
                kind = message["type"]
                if kind == "http.response.start":
                    start = message
                    headers = message.get("headers", ())
                    keep = message["status"] == 200 and _keepable(headers)
                    page = _page(headers)
                elif kind == "http.response.body":
                    body = message.get("body", b"")
                    size += len(body)
                    chunks.append(body)
                    if not page or size > MAX_ENTRY_BYTES:
                        keep = False
                        chunks.clear()
                elif kind == "http.response.pathsend":
                    path = message["path"]
            await send(message)

        await self.app(scope, receive, capture)
        if not keep or start is None or scope.get(CREDENTIALED):
            return
        headers = [(bytes(k), bytes(v)) for k, v in start.get("headers", ())]
        route = self.routes.label(scope)
        if path is not None:
            self.near.put(key, generation, headers, path=path, route=route)
        elif chunks:
            self.near.put(key, generation, headers, body=b"".join(chunks), route=route)


def _keepable(headers: Any) -> bool:
    """Not a stale page (retry soon), nothing per client (cookies), nothing
    its sender marked as for one client only."""
    for k, v in headers:
        if k in (b"x-orchard-stale", b"set-cookie"):
            return False
        if k == b"cache-control" and (b"private" in v or b"no-store" in v):
            return False
    return True


def _page(headers: Any) -> bool:
    """Whether a body is worth holding: a page, not a file. A file streamed
    through Python (an upstream fetch being cached, a blob on S3) is never
    held in memory; its next answer comes from storage, by path where the
    storage has one."""
    for k, v in headers:
        if k == b"content-disposition":
            return False
        if k == b"content-type" and not v.startswith(PAGE_TYPES):
            return False
    return True
