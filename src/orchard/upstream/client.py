"""The one pooled upstream HTTP client of a process, for all upstream
traffic, and the background work that follows upstream fetches
(``finish.py``): closing the client (the lifespan does, before it closes
the database and storage) first lets that work end.

It is one ``aiohttp.ClientSession``. Why aiohttp rather than httpx: a
proxied cold ``pip install`` makes one upstream request per page and per
file, one after another, so the client's own CPU per request shows in every
cold install. This project's bench notes measured aiohttp at 0.07 ms of CPU
per request (llhttp in C parses the answer) against 0.12 ms for the
hand-written HTTP/1.1 client it replaced and 0.5 to 0.9 ms for httpx (its
request model, httpcore, h11 in pure Python, anyio's stream wrappers); with
this module's redirect and address checks on top, a small GET to a local
nginx costs about 0.10 ms, as the hand-written client did. The price is
memory: importing aiohttp adds about 6.5 MB to the process (httpx: 4).
aiohttp keeps the pool (``ORCHARD_HTTP_MAX_CONNECTIONS`` in use at most),
speaks TLS, tries IPv6 and IPv4 addresses in turn (happy eyeballs),
tunnels through forward proxies, frames bodies (Content-Length, chunked)
and decodes gzip/deflate in bounded pieces.

What Orchard adds, through aiohttp's public API only:

- **Redirects are followed here** (``allow_redirects=False``), so that each
  hop obeys the request's ``LinkRule`` and the connect-time address check
  of ``resolver.py``; ``Authorization`` is dropped once a hop leaves the
  first origin, and credentials written in a URL (``user:token@``) go as
  Basic auth to that URL only.
- **Forward proxies** come from the environment (``HTTP_PROXY``,
  ``HTTPS_PROXY``, ``ALL_PROXY``, ``NO_PROXY``, either case), read once with
  the standard library's ``urllib.request.getproxies``/``proxy_bypass``
  (what aiohttp itself uses). Not aiohttp's ``trust_env``: it reads the
  environment and ``~/.netrc`` in a worker thread on every request, and
  would send ``.netrc`` credentials to upstream hosts.
- **No cookies** are kept (an upstream is not a browser session).
- **Errors** are this project's (``errors.py``), never aiohttp's.

``ORCHARD_HTTP_MAX_KEEPALIVE``: aiohttp keeps no count of idle connections;
0 turns keep-alive off, any other value keeps idle connections for
``KEEPALIVE_EXPIRY`` seconds (they count against the connection limit).
"""

from __future__ import annotations

import base64
import ssl
import urllib.request
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

import aiohttp
from aiohttp.abc import AbstractResolver
from yarl import URL

from orchard import __version__
from orchard.settings import Settings
from orchard.upstream.background import Background
from orchard.upstream.errors import (
    BlockedAddress,
    ClientClosed,
    ConnectError,
    ConnectTimeout,
    DecodingError,
    HTTPError,
    InvalidRequest,
    ReadTimeout,
    RemoteProtocolError,
    TooManyRedirects,
)
from orchard.upstream.resolver import PublicAddressResolver, vetting
from orchard.upstream.urls import LinkRule, mask

DRAIN_TIMEOUT = 30.0  # seconds closing waits for background work
KEEPALIVE_EXPIRY = 5.0  # seconds an idle connection is kept
MAX_REDIRECTS = 20
REDIRECTS = frozenset({301, 302, 303, 307, 308})
PIECE = 256 * 1024  # most body bytes one iteration yields (decoded bodies too)
MAX_FIELD_BYTES = 32 * 1024  # one header line of an answer, at most
REDIRECT_BODY = 64 * 1024  # a redirect's body is read (to keep the connection) up to this
ACCEPT_ENCODING = "gzip, deflate"
DECODED = frozenset({"", "identity", "gzip", "x-gzip", "deflate"})

__all__ = [
    "HTTPError",
    "UpstreamClient",
    "UpstreamResponse",
    "create_http_client",
]


def _ssl_setting() -> ssl.SSLContext | bool:
    """``True``: aiohttp's own verifying context, made when aiohttp is
    imported, from the system's CA store (``SSL_CERT_FILE`` and
    ``SSL_CERT_DIR`` honoured, as set when the process started); a second
    context would hold a second copy of the store (about 1 MB). On a system
    without a CA store: certifi's bundle."""
    paths = ssl.get_default_verify_paths()
    if paths.cafile or paths.capath:
        return True
    context = ssl.create_default_context()
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

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(
            max_connections=settings.http_max_connections,
            max_keepalive=settings.http_max_keepalive,
            connect_timeout=settings.http_connect_timeout,
            read_timeout=settings.http_read_timeout,
            user_agent=f"orchard/{__version__}",
        )


@dataclass(frozen=True)
class _Proxy:
    url: URL
    headers: Mapping[str, str] | None  # Proxy-Authorization, from the proxy URL's user info


def _proxies_from_environment() -> dict[str, _Proxy]:
    """A proxy for each URL scheme, from the environment."""
    found = urllib.request.getproxies()
    proxies: dict[str, _Proxy] = {}
    for scheme in ("http", "https"):
        value = found.get(scheme) or found.get("all")
        if not value:
            continue
        if "://" not in value:
            value = f"http://{value}"
        url = URL(value)
        auth = aiohttp.BasicAuth.from_url(url)
        headers = {"Proxy-Authorization": auth.encode()} if auth is not None else None
        proxies[scheme] = _Proxy(url.with_user(None), headers)
    return proxies


def _error(exc: BaseException) -> HTTPError:
    """aiohttp's exception as one of ``errors.py``'s."""
    if isinstance(exc, HTTPError):
        return exc
    if isinstance(exc, aiohttp.ClientResponseError):
        detail = exc.message  # str(exc) would repeat the URL
    else:
        detail = str(exc) or type(exc).__name__
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return ConnectTimeout(detail)
    if isinstance(exc, TimeoutError):  # aiohttp's read timeouts are TimeoutErrors too
        return ReadTimeout(detail or "the upstream sent nothing within the read timeout")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return ConnectError(detail)
    if isinstance(exc, aiohttp.InvalidURL | ValueError):
        return InvalidRequest(detail)
    return RemoteProtocolError(detail)


def _with_userinfo(url: str, headers: dict[str, str]) -> tuple[str, dict[str, str]]:
    """``url`` without user info, and ``headers`` with it as Basic credentials
    (as in ``https://user:token@host/simple``) unless they name credentials."""
    if "@" not in url:
        return url, headers
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, headers
    netloc = parts.netloc.rpartition("@")[2]
    bare = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    if any(k.lower() == "authorization" for k in headers):
        return bare, headers
    pair = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
    token = base64.b64encode(pair.encode()).decode()
    return bare, {**headers, "Authorization": f"Basic {token}"}


def _origin(url: str) -> tuple[str, str, int]:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidRequest(f"not a valid URL: {mask(url)!r}") from exc
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise InvalidRequest(f"not an http(s) URL: {mask(url)!r}")
    return scheme, parts.hostname, port or (443 if scheme == "https" else 80)


class UpstreamResponse:
    """An answer being read: status, headers (any case), the URL it came
    from (the last hop, with the user info it was asked with: the links of
    a page are resolved against it), and its body once, through ``aiter_bytes``."""

    __slots__ = ("_response", "headers", "status_code", "url")

    def __init__(self, response: aiohttp.ClientResponse, url: str) -> None:
        self._response = response
        self.status_code = response.status
        self.headers: Mapping[str, str] = response.headers
        self.url = url

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        """The body, decoded (gzip, deflate), in pieces of ``PIECE`` bytes at most."""
        encoding = (self.headers.get("content-encoding") or "").strip().lower()
        if encoding not in DECODED:
            raise DecodingError(f"unsupported Content-Encoding {encoding[:40]!r}")
        try:
            async for chunk in self._response.content.iter_chunked(PIECE):
                yield chunk
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _error(exc) from exc


class UpstreamClient:
    """``stream("GET", url, headers, rule)`` for every upstream request of
    the process; owns the upstream background work."""

    def __init__(
        self,
        limits: Limits,
        resolver: AbstractResolver | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.limits = limits
        self.background = Background()
        self._proxies = _proxies_from_environment()
        self._resolver = PublicAddressResolver(resolver or aiohttp.ThreadedResolver())
        connector = aiohttp.TCPConnector(
            limit=limits.max_connections,
            limit_per_host=0,
            keepalive_timeout=KEEPALIVE_EXPIRY if limits.max_keepalive > 0 else None,
            force_close=limits.max_keepalive <= 0,
            use_dns_cache=False,  # every new connection is resolved (and vetted): resolver.py
            resolver=self._resolver,
            ssl=ssl_context or _ssl_setting(),
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(
                total=None,
                connect=limits.connect_timeout,  # a free connection, and connecting
                sock_connect=limits.connect_timeout,
                sock_read=limits.read_timeout,  # each piece of the answer
            ),
            headers={"User-Agent": limits.user_agent},
            cookie_jar=aiohttp.DummyCookieJar(),
            max_field_size=MAX_FIELD_BYTES,
            max_line_size=MAX_FIELD_BYTES,
            trust_env=False,
        )
        self._in_use = 0

    @property
    def is_closed(self) -> bool:
        return self._session.closed

    @property
    def kind(self) -> str:
        return "aiohttp (forward proxy)" if self._proxies else "aiohttp"

    def stats(self) -> dict[str, int]:
        return {"in_use": self._in_use}

    def _proxy_for(self, scheme: str, host: str) -> _Proxy | None:
        proxy = self._proxies.get(scheme)
        if proxy is None or urllib.request.proxy_bypass(host):
            return None
        return proxy

    async def _send(
        self,
        url: str,
        origin: tuple[str, str, int],
        headers: Mapping[str, str],
        rule: LinkRule | None,
    ) -> aiohttp.ClientResponse:
        """One hop: checked against ``rule``, then sent; its answer's head."""
        scheme, host, port = origin
        vet = False
        if rule is not None:
            try:
                vet = rule.needs_vetting(url)
            except ValueError as exc:
                raise BlockedAddress(str(exc)) from None
        proxy = self._proxy_for(scheme, host) if self._proxies else None
        if vet and proxy is not None:  # the proxy connects: check the host first
            await self._resolver.check_public(host, port)
        proxy_headers = proxy.headers if proxy else None
        if proxy_headers and scheme == "http":  # no tunnel: the proxy reads the request itself
            headers, proxy_headers = {**headers, **proxy_headers}, None
        target = URL(url)
        with vetting(vet and proxy is None):
            return await self._session.get(
                target,
                headers=headers,
                allow_redirects=False,
                proxy=proxy.url if proxy else None,
                proxy_headers=proxy_headers,
                # vetted connections are pooled apart (the server name is in the key)
                server_hostname=(target.raw_host or host).rstrip(".") if vet else None,
            )

    @asynccontextmanager
    async def stream(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None = None,
        rule: LinkRule | None = None,
    ) -> AsyncIterator[UpstreamResponse]:
        """``GET url``, redirects followed; with ``rule``, every hop must be a
        URL the rule lets the upstream send Orchard to (``BlockedAddress``)."""
        if method != "GET":
            raise InvalidRequest(f"only GET is supported, not {method}")
        if self._session.closed:
            raise ClientClosed("the upstream client is closed")
        sent = {"Accept-Encoding": ACCEPT_ENCODING}
        for name, value in (headers or {}).items():
            sent = {k: v for k, v in sent.items() if k.lower() != name.lower()}
            sent[name] = value
        origin = first = _origin(url)
        try:
            for _hop in range(MAX_REDIRECTS + 1):
                if origin != first:  # credentials stay with their origin
                    sent = {k: v for k, v in sent.items() if k.lower() != "authorization"}
                bare, hop_headers = _with_userinfo(url, sent)
                response = await self._send(bare, origin, hop_headers, rule)
                location = response.headers.get("location")
                if response.status not in REDIRECTS or not location:
                    break
                await _discard(response)
                try:
                    url = urljoin(url, location)
                    origin = _origin(url)
                except (ValueError, InvalidRequest) as exc:
                    raise RemoteProtocolError(f"unusable redirect to {mask(location)!r}") from exc
            else:
                raise TooManyRedirects(f"more than {MAX_REDIRECTS} redirects from {mask(url)}")
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise _error(exc) from exc
        except RuntimeError as exc:  # aiohttp's word for a closed session
            if self._session.closed:
                raise ClientClosed("the upstream client is closed") from exc
            raise
        self._in_use += 1
        try:
            yield UpstreamResponse(response, url)
        finally:
            self._in_use -= 1
            response.release()

    async def aclose(self) -> None:
        await self.background.drain(DRAIN_TIMEOUT)
        await self._session.close()


async def _discard(response: aiohttp.ClientResponse) -> None:
    """A redirect's body: read when it is small and framed by Content-Length
    (the connection is kept), else dropped with its connection."""
    length = response.headers.get("content-length", "")
    if length.isdigit() and int(length) <= REDIRECT_BODY:
        with suppress(aiohttp.ClientError, TimeoutError):
            await response.read()
    response.release()


def create_http_client(
    settings: Settings, resolver: AbstractResolver | None = None
) -> UpstreamClient:
    """The process's client (made in the lifespan, with the event loop running)."""
    return UpstreamClient(Limits.from_settings(settings), resolver)
