"""Upstream requests through a forward proxy, with httpx.

When the environment names a proxy (``HTTP_PROXY``, ``HTTPS_PROXY``,
``ALL_PROXY``, in either case), as it does behind many corporate firewalls,
every upstream request goes through httpx, which speaks to proxies
(``CONNECT`` tunnels, proxy credentials) and honours ``NO_PROXY``. The
answers look like those of ``http11.py``, errors included, so the callers
cannot tell which client served them.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from orchard.upstream import http11
from orchard.upstream.urls import LinkRule, resolve_public

if TYPE_CHECKING:
    import httpx

PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")
_RULE: ContextVar[LinkRule | None] = ContextVar("orchard_link_rule", default=None)


async def _check_hop(request: httpx.Request) -> None:
    """httpx's request hook: every hop (redirects too) obeys the request's
    link rule; a host that must be public is resolved and checked first
    (the proxy connects, so this is as close as Orchard gets)."""
    rule = _RULE.get()
    if rule is None:
        return
    url = str(request.url)
    try:
        if rule.needs_vetting(url):
            parts = urlsplit(url)
            await resolve_public(parts.hostname or "", parts.port or 443)
    except ValueError as exc:
        raise http11.BlockedAddress(str(exc)) from None
    except OSError as exc:
        raise http11.ConnectError(str(exc)) from None


def proxy_configured(environ: Mapping[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    return any(env.get(name) or env.get(name.lower()) for name in PROXY_VARIABLES)


def _error(exc: Exception) -> http11.HTTPError:
    import httpx

    kinds: list[tuple[type[Exception], type[http11.HTTPError]]] = [
        (httpx.ConnectTimeout, http11.ConnectTimeout),
        (httpx.PoolTimeout, http11.PoolTimeout),
        (httpx.TimeoutException, http11.ReadTimeout),
        (httpx.ConnectError, http11.ConnectError),
        (httpx.ProxyError, http11.ConnectError),
        (httpx.TooManyRedirects, http11.TooManyRedirects),
        (httpx.DecodingError, http11.DecodingError),
    ]
    for source, target in kinds:
        if isinstance(exc, source):
            return target(str(exc) or type(exc).__name__)
    return http11.RemoteProtocolError(str(exc) or type(exc).__name__)


class ProxiedResponse:
    def __init__(self, response: httpx.Response) -> None:
        self._response = response
        self.status_code = response.status_code
        self.headers: Mapping[str, str] = response.headers
        self.url = str(response.url)

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        import httpx

        try:
            async for chunk in self._response.aiter_bytes():
                yield chunk
        except httpx.HTTPError as exc:
            raise _error(exc) from exc


class ProxiedPool:
    """The same ``stream`` as ``http11.Pool``, through httpx (trust_env)."""

    def __init__(self, limits: http11.Limits) -> None:
        import importlib.util
        import sys

        import httpx

        # httpcore asks ``import sniffio`` which async library runs, several
        # times per request; without sniffio installed (anyio 4 no longer
        # needs it) each try searches sys.path and fails (about 0.3 ms). A
        # None entry makes the failing import immediate.
        if importlib.util.find_spec("sniffio") is None:
            sys.modules.setdefault("sniffio", None)  # type: ignore[arg-type]

        self._client = httpx.AsyncClient(
            limits=httpx.Limits(
                max_connections=limits.max_connections,
                max_keepalive_connections=limits.max_keepalive,
            ),
            timeout=httpx.Timeout(
                connect=limits.connect_timeout,
                read=limits.read_timeout,
                write=limits.read_timeout,
                pool=limits.connect_timeout,
            ),
            follow_redirects=True,
            headers={"User-Agent": limits.user_agent},
            trust_env=True,
            event_hooks={"request": [_check_hop]},
        )

    @property
    def is_closed(self) -> bool:
        return self._client.is_closed

    def stats(self) -> dict[str, int]:
        return {"proxied": 1}

    @asynccontextmanager
    async def stream(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None = None,
        rule: LinkRule | None = None,
    ) -> AsyncIterator[ProxiedResponse]:
        import httpx

        _RULE.set(rule)  # this task's requests (the hook runs in it)
        try:
            async with self._client.stream(method, url, headers=dict(headers or {})) as response:
                yield ProxiedResponse(response)
        except httpx.HTTPError as exc:
            raise _error(exc) from exc
        except httpx.InvalidURL as exc:
            raise http11.InvalidRequest(str(exc)) from exc

    async def aclose(self) -> None:
        await self._client.aclose()
