"""A lean HTTP/1.1 client for upstream GETs: asyncio's own transports,
httptools (llhttp, in C) for parsing, a keep-alive pool per origin.

Why not httpx for this: a proxied cold ``pip install`` makes one upstream
request per page and per file, one after another, and through httpx (its
request model, httpcore, h11 in pure Python, anyio's stream wrappers) each
cost 0.5 to 0.9 ms of the event loop, about half of everything the server
did for a cold request. Here a request is one ``transport.write`` and the
answer is parsed by llhttp as it arrives (about 0.1 ms). aiohttp is as
fast but adds some 14 MB to every process (httpx: 5.5, this: 0.3).

What it does, and no more: ``GET`` over plain TCP or TLS (the system's CA
store, or certifi's when the system has none), keep-alive with a bounded
pool, redirects (credentials never leave their origin), bodies by
Content-Length, chunked or until close, gzip/deflate decoding in bounded
pieces, flow control (reading pauses while the consumer is behind), and
timeouts for connecting, waiting for a slot and every read. Forward proxies
are not spoken here: with a proxy configured in the environment the
upstream client uses httpx instead (``upstream/proxied.py``).
"""

from __future__ import annotations

import asyncio
import base64
import ssl
import time
import zlib
from collections import deque
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import quote, unquote, urljoin, urlsplit

import httptools

from orchard.upstream.urls import LinkRule, mask, resolve_public

HIGH_WATER = 1024 * 1024  # buffered body bytes that pause reading from the socket
LOW_WATER = 256 * 1024  # ... and that resume it
DECODED_PIECE = 256 * 1024  # most bytes one decompression step may produce
MAX_REDIRECTS = 20
MAX_HEAD_BYTES = 64 * 1024  # status line and header fields of one answer, at most
KEEPALIVE_EXPIRY = 5.0  # seconds an idle connection is kept
REDIRECTS = frozenset({301, 302, 303, 307, 308})
_TARGET_SAFE = "/:@!$&'()*+,;=?%~-._"
_FORBIDDEN = ("\r", "\n", "\0")


class HTTPError(Exception):
    """No usable answer from an upstream (the subclasses say why)."""


class ConnectError(HTTPError):
    pass


class TimeoutException(HTTPError):
    pass


class ConnectTimeout(TimeoutException):
    pass


class ReadTimeout(TimeoutException):
    pass


class PoolTimeout(TimeoutException):
    pass


class RemoteProtocolError(HTTPError):
    """A malformed answer, or the connection closed in the middle of one."""


class DecodingError(HTTPError):
    pass


class TooManyRedirects(HTTPError):
    pass


class InvalidRequest(HTTPError):
    """A URL or header that cannot be sent (e.g. a line break in a value)."""


class BlockedAddress(HTTPError):
    """A URL (a link or a redirect) the upstream may not send Orchard to:
    another host than the allowed ones, or one with a non-public address."""


class ClientClosed(HTTPError):
    pass


class UpstreamResponse(Protocol):
    """What callers read of an answer (also offered by ``proxied.py``)."""

    @property
    def status_code(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    @property
    def url(self) -> str: ...

    def aiter_bytes(self) -> AsyncIterator[bytes]: ...


Origin = tuple[str, str, int]


def _origin(url: str) -> tuple[Origin, str]:
    """(scheme, host, port) and the request target of an absolute URL."""
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise InvalidRequest(f"not a valid URL: {mask(url)!r}") from exc
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise InvalidRequest(f"not an http(s) URL: {mask(url)!r}")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError as exc:
        raise InvalidRequest(f"bad port in {mask(url)!r}") from exc
    target = quote(parts.path or "/", safe=_TARGET_SAFE)
    if parts.query:
        target += "?" + quote(parts.query, safe=_TARGET_SAFE)
    return (scheme, parts.hostname, port), target


def _host_header(origin: Origin) -> str:
    scheme, host, port = origin
    try:
        host.encode("ascii")
    except UnicodeEncodeError:
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise InvalidRequest(f"not a valid host name: {host!r}") from exc
    if ":" in host:
        host = f"[{host}]"
    default = 443 if scheme == "https" else 80
    return host if port == default else f"{host}:{port}"


def _with_userinfo(url: str, headers: dict[str, str]) -> dict[str, str]:
    """``headers`` with Basic credentials from the URL's user info (as in
    ``https://user:token@host/simple``), unless they name credentials already."""
    parts = urlsplit(url)
    if parts.username is None or any(k.lower() == "authorization" for k in headers):
        return headers
    pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
    return {**headers, "Authorization": "Basic " + base64.b64encode(pair.encode()).decode()}


def _request_bytes(origin: Origin, target: str, headers: Mapping[str, str]) -> bytes:
    lines = [f"GET {target} HTTP/1.1", f"Host: {_host_header(origin)}"]
    for name, value in headers.items():
        if any(c in name or c in value for c in _FORBIDDEN) or ":" in name:
            raise InvalidRequest(f"header {name!r} cannot be sent")
        lines.append(f"{name}: {value}")
    lines.append("\r\n")
    try:
        return "\r\n".join(lines).encode("latin-1")
    except UnicodeEncodeError as exc:
        raise InvalidRequest("a header holds characters HTTP/1.1 cannot carry") from exc


class _Connection(asyncio.Protocol):
    """One TCP (or TLS) connection; answers one request at a time."""

    def __init__(self, origin: Origin) -> None:
        self.origin = origin
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self.used = False  # has answered a request before (a reused keep-alive connection)
        self.vetted = False  # connected to an address checked to be public
        self._parser: httptools.HttpResponseParser | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._paused = False
        self._reset()

    def _reset(self) -> None:
        self.received = 0  # bytes of the current answer so far
        self.body_bytes = 0  # ... of them its body (not framing or head)
        self.chunk_count = 0
        self.status = 0
        self.header_list: list[tuple[bytes, bytes]] = []
        self.headers_done = False
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.complete = False
        self.until_close = False  # the body ends when the connection does
        self.keep_alive = False
        self.error: HTTPError | None = None
        self._interim = False
        # Body bytes still due by Content-Length once the head is parsed: from
        # then on they are taken as received, without llhttp's copy (None:
        # the parser frames the body, e.g. chunked).
        self._due: int | None = None

    # -- asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        parser = self._parser
        if parser is None or self.complete:  # nothing (more) asked: the upstream must be silent
            self.close()
            return
        self.received += len(data)
        if self._due is not None:
            self._take_due(data)
            return
        try:
            parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
            if self.complete:  # a whole answer, then bytes nothing asked for: drop those
                self.keep_alive = False
                self.close()
                self._wake()
                return
            self._fail(RemoteProtocolError(f"malformed answer from the upstream: {exc!r}"))
            self.close()
            return
        if self.received - self.body_bytes > MAX_HEAD_BYTES + 64 * self.chunk_count:
            # head, chunk framing and trailers: llhttp would buffer them without end
            self._fail(RemoteProtocolError("the upstream's answer headers are too large"))
            self.close()
            return
        self._pace()

    def eof_received(self) -> bool:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._parser is not None and not self.complete and self.error is None:
            if self.headers_done and self.until_close:
                self.complete = True
            else:
                self._fail(RemoteProtocolError("the upstream closed the connection mid-answer"))
        self._wake()

    # -- httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        if not self.headers_done:  # trailers after a chunked body are ignored
            self.header_list.append((name, value))

    def on_headers_complete(self) -> None:
        parser = self._parser
        assert parser is not None
        status = parser.get_status_code()
        if 100 <= status < 200:  # an interim answer (100, 103): the real one follows
            self._interim = True
            self.header_list = []
            return
        self.status = status
        self.headers_done = True
        fields = {n.lower(): v.lower() for n, v in self.header_list}
        chunked = b"chunked" in fields.get(b"transfer-encoding", b"")
        self.until_close = (
            b"content-length" not in fields and not chunked and status not in (204, 304)
        )
        length = fields.get(b"content-length", b"")
        if not chunked and status not in (204, 304) and length.isdigit() and int(length) > 0:
            # llhttp has checked the field (one value, digits only)
            self._due = int(length)

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)
        self.buffered += len(body)
        self.body_bytes += len(body)
        if self._due is not None:
            self._due -= len(body)
            if self._due == 0:
                self._due = None  # the parser ends the message itself

    def _take_due(self, data: bytes) -> None:
        """Body bytes framed by Content-Length, past the part of them that
        came with the head: kept as received (no copy)."""
        due = self._due
        assert due is not None and self._parser is not None
        extra = len(data) > due  # bytes after the answer, that nothing asked for
        self.on_body(data[:due] if extra else data)
        if self._due is None:
            self.keep_alive = self._parser.should_keep_alive() and not extra
            self.complete = True
        self._pace()

    def on_chunk_header(self) -> None:
        self.chunk_count += 1

    def on_message_complete(self) -> None:
        parser = self._parser
        assert parser is not None
        if self._interim:
            self._interim = False
            return
        self.keep_alive = parser.should_keep_alive() and not self.until_close
        self.complete = True

    # -- for the pool and the response
    def _pace(self) -> None:
        """Stop reading while the consumer is behind; wake it."""
        if self.buffered > HIGH_WATER and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, error: HTTPError) -> None:
        if self.error is None:
            self.error = error
        self._wake()

    def send(self, request: bytes) -> None:
        self._reset()
        self._parser = httptools.HttpResponseParser(self)
        assert self.transport is not None
        self.transport.write(request)

    async def wait(self, seconds: float) -> None:
        """Until something new arrived (or ``seconds`` passed: ReadTimeout)."""
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        timer = loop.call_later(seconds, _expire, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None

    def take(self) -> bytes | None:
        """The next body chunk, if one is buffered."""
        if not self.chunks:
            return None
        chunk = self.chunks.popleft()
        self.buffered -= len(chunk)
        if self._paused and self.buffered < LOW_WATER and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        return chunk

    def finish(self) -> None:
        """The answer is over (unread bytes of it dropped): ready for the next request."""
        self._parser = None
        self.used = True
        self.chunks.clear()
        self.buffered = 0
        if self._paused and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(ReadTimeout("the upstream sent nothing within the read timeout"))


class Headers(dict[str, str]):
    """Response headers by lower-case name; repeated fields joined by ", "."""

    @classmethod
    def parse(cls, raw: list[tuple[bytes, bytes]]) -> Headers:
        headers = cls()
        for name, value in raw:
            key = name.decode("latin-1").lower()
            text = value.decode("latin-1").strip()
            headers[key] = f"{headers[key]}, {text}" if key in headers else text
        return headers

    def get(self, key: str, default: str | None = None) -> str | None:  # type: ignore[override]
        return super().get(key.lower(), default)

    def __contains__(self, key: object) -> bool:
        return super().__contains__(key.lower() if isinstance(key, str) else key)


class Response:
    """An answer being read; its body once, through ``aiter_bytes``."""

    def __init__(self, pool: Pool, conn: _Connection, url: str) -> None:
        self._pool = pool
        self._conn: _Connection | None = conn
        self.url = url
        self.status_code = conn.status
        self.headers = Headers.parse(conn.header_list)

    @property
    def complete(self) -> bool:
        return self._conn is None or (self._conn.complete and not self._conn.chunks)

    async def aiter_raw(self) -> AsyncIterator[bytes]:
        """The body as sent (still encoded)."""
        conn = self._conn
        if conn is None:
            return
        timeout = self._pool.read_timeout
        while True:
            chunk = conn.take()
            if chunk is not None:
                yield chunk
                continue
            if conn.error is not None:
                raise conn.error
            if conn.complete:
                break
            await conn.wait(timeout)
        self._release()

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        """The body, decoded (gzip, deflate), in pieces of bounded size."""
        encoding = (self.headers.get("content-encoding") or "identity").lower().strip()
        if encoding in ("identity", ""):
            async for chunk in self.aiter_raw():
                yield chunk
            return
        if encoding in ("gzip", "x-gzip"):
            decoder = zlib.decompressobj(zlib.MAX_WBITS | 32)
        elif encoding == "deflate":
            decoder = _DeflateDecoder()  # type: ignore[assignment]
        else:
            raise DecodingError(f"unsupported Content-Encoding {encoding!r}")
        try:
            async for chunk in self.aiter_raw():
                data = chunk
                while data:
                    piece = decoder.decompress(data, DECODED_PIECE)
                    data = decoder.unconsumed_tail
                    if piece:
                        yield piece
            tail = decoder.flush()
        except zlib.error as exc:
            raise DecodingError(f"undecodable {encoding} body: {exc}") from exc
        if tail:
            yield tail

    def _release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            self._pool.release(conn, reusable=conn.complete and conn.keep_alive)

    async def aclose(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:  # unread: reusable only if the whole answer has arrived
            reusable = conn.complete and conn.keep_alive and conn.error is None
            self._pool.release(conn, reusable=reusable)


class _DeflateDecoder:
    """``deflate`` as zlib data, or (as some servers send it) raw."""

    def __init__(self) -> None:
        self._inner = zlib.decompressobj()
        self._first = True
        self.unconsumed_tail = b""

    def decompress(self, data: bytes, max_length: int) -> bytes:
        if self._first:
            self._first = False
            try:
                out = self._inner.decompress(data, max_length)
            except zlib.error:
                self._inner = zlib.decompressobj(-zlib.MAX_WBITS)
                out = self._inner.decompress(data, max_length)
        else:
            out = self._inner.decompress(data, max_length)
        self.unconsumed_tail = self._inner.unconsumed_tail
        return out

    def flush(self) -> bytes:
        return self._inner.flush()


def default_ssl_context() -> ssl.SSLContext:
    """The system's CA store (SSL_CERT_FILE / SSL_CERT_DIR honoured), or
    certifi's bundle on a system that has none."""
    context = ssl.create_default_context()
    if not context.cert_store_stats().get("x509_ca"):
        try:
            import certifi

            context.load_verify_locations(certifi.where())
        except (ImportError, OSError):
            pass
    return context


@dataclass(frozen=True)
class Limits:
    """The pool's bounds and timeouts (from the ``ORCHARD_HTTP_*`` settings)."""

    max_connections: int
    max_keepalive: int
    connect_timeout: float  # seconds to connect, and to wait for a free connection
    read_timeout: float  # seconds to wait for each piece of an answer
    user_agent: str


class Pool:
    """Connections by origin: at most ``max_connections`` in use at once,
    at most ``max_keepalive`` kept idle (each for ``KEEPALIVE_EXPIRY`` s)."""

    def __init__(self, limits: Limits) -> None:
        self.max_connections = limits.max_connections
        self.max_keepalive = limits.max_keepalive
        self.connect_timeout = limits.connect_timeout
        self.read_timeout = limits.read_timeout
        self.user_agent = limits.user_agent
        self.is_closed = False
        self._idle: dict[Origin, list[_Connection]] = {}
        self._in_use: set[_Connection] = set()
        self._slots: asyncio.Semaphore | None = None
        self._ssl: ssl.SSLContext | None = None

    def stats(self) -> dict[str, int]:
        return {"in_use": len(self._in_use), "idle": sum(len(v) for v in self._idle.values())}

    async def _acquire(self, origin: Origin, vet: bool = False) -> _Connection:
        if self.is_closed:
            raise ClientClosed("the upstream client is closed")
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.max_connections)
        slots = self._slots
        if slots.locked():
            try:
                async with asyncio.timeout(self.connect_timeout):
                    await slots.acquire()
            except TimeoutError:
                raise PoolTimeout("no upstream connection became free in time") from None
        else:
            await slots.acquire()
        try:
            conn = self._idle_connection(origin, vet) or await self._connect(origin, vet)
        except BaseException:
            slots.release()
            raise
        self._in_use.add(conn)
        return conn

    def _idle_connection(self, origin: Origin, vet: bool = False) -> _Connection | None:
        idle = self._idle.get(origin)
        now = time.monotonic()
        skipped: list[_Connection] = []  # not vetted, kept for unvetted requests
        found = None
        while idle:
            conn = idle.pop()
            if conn.closed or now - conn.idle_since >= KEEPALIVE_EXPIRY:
                conn.close()
            elif vet and not conn.vetted:
                skipped.append(conn)
            else:
                found = conn
                break
        if skipped:
            self._idle.setdefault(origin, []).extend(reversed(skipped))
        return found

    async def _connect(self, origin: Origin, vet: bool = False) -> _Connection:
        """A new connection; with ``vet``, only to the host's addresses once
        all of them were checked to be public (no second lookup to race)."""
        scheme, host, port = origin
        loop = asyncio.get_running_loop()
        context = None
        if scheme == "https":
            if self._ssl is None:
                self._ssl = default_ssl_context()
            context = self._ssl
        conn = _Connection(origin)
        conn.vetted = vet
        try:
            async with asyncio.timeout(self.connect_timeout):
                addresses = [host]
                if vet:
                    try:
                        addresses = await resolve_public(host, port)
                    except ValueError as exc:
                        raise BlockedAddress(str(exc)) from None
                for i, address in enumerate(addresses):
                    try:
                        await loop.create_connection(
                            lambda: conn,
                            address,
                            port,
                            ssl=context,
                            server_hostname=host if context is not None else None,
                        )
                        break
                    except OSError:
                        if i == len(addresses) - 1:
                            raise
        except TimeoutError:
            conn.close()
            raise ConnectTimeout(f"connecting to {host}:{port} timed out") from None
        except (OSError, ssl.SSLError) as exc:
            conn.close()
            raise ConnectError(f"cannot connect to {host}:{port}: {exc}") from exc
        return conn

    def release(self, conn: _Connection, *, reusable: bool) -> None:
        if conn not in self._in_use:
            return
        self._in_use.discard(conn)
        if self._slots is not None:
            self._slots.release()
        conn.finish()
        idle = self._idle.setdefault(conn.origin, [])
        kept = sum(len(v) for v in self._idle.values())
        if reusable and not conn.closed and not self.is_closed and kept < self.max_keepalive:
            conn.idle_since = time.monotonic()
            idle.append(conn)
        else:
            conn.close()

    async def _send(
        self, origin: Origin, target: str, url: str, request: bytes, vet: bool = False
    ) -> Response:
        """One request on one connection, until its headers arrived; a reused
        connection that turns out closed is replaced once."""
        for attempt in (1, 2):
            conn = await self._acquire(origin, vet)
            reused = conn.used
            try:
                if conn.closed:
                    raise RemoteProtocolError("the kept connection was closed")
                conn.send(request)
                while not conn.headers_done:
                    if conn.error is not None:
                        raise conn.error
                    await conn.wait(self.read_timeout)
            except RemoteProtocolError:
                self.release(conn, reusable=False)
                if reused and attempt == 1 and conn.received == 0:
                    continue  # the server had closed it while it was idle
                raise
            except BaseException:
                self.release(conn, reusable=False)
                raise
            return Response(self, conn, url)
        raise AssertionError("unreachable")

    @asynccontextmanager
    async def stream(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None = None,
        rule: LinkRule | None = None,
    ) -> AsyncIterator[Response]:
        """``GET url``; follows redirects (Authorization only within one origin).
        With ``rule``, every hop must be a URL the rule lets the upstream send
        Orchard to (``BlockedAddress`` otherwise)."""
        if method != "GET":
            raise InvalidRequest(f"only GET is supported, not {method}")
        sent = {"User-Agent": self.user_agent, "Accept-Encoding": "gzip, deflate"}
        for name, value in (headers or {}).items():
            sent = {k: v for k, v in sent.items() if k.lower() != name.lower()}
            sent[name] = value
        first, _ = _origin(url)
        for _hop in range(MAX_REDIRECTS + 1):
            origin, target = _origin(url)
            if origin != first:
                sent = {k: v for k, v in sent.items() if k.lower() != "authorization"}
            vet = False
            if rule is not None:
                try:
                    vet = rule.needs_vetting(url)
                except ValueError as exc:
                    raise BlockedAddress(str(exc)) from None
            request = _request_bytes(origin, target, _with_userinfo(url, sent))
            response = await self._send(origin, target, url, request, vet)
            location = response.headers.get("location")
            if response.status_code not in REDIRECTS or not location:
                break
            await response.aclose()
            try:
                url = urljoin(url, location)
            except ValueError as exc:
                raise RemoteProtocolError(f"unusable redirect to {mask(location)!r}") from exc
        else:
            raise TooManyRedirects(f"more than {MAX_REDIRECTS} redirects from {mask(url)}")
        try:
            yield response
        finally:
            await response.aclose()

    async def aclose(self) -> None:
        self.is_closed = True
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle.clear()
        for conn in list(self._in_use):
            conn.close()
