"""The one pooled upstream HTTP client of a process, for all upstream
traffic, and the background work that follows upstream fetches
(``finish.py``): closing the client (the lifespan does, before it closes
the database and storage) first lets that work end.

Requests go through Orchard's lean HTTP/1.1 pool (``http11.py``), or,
when the environment names a forward proxy, through httpx
(``proxied.py``); both answer alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from orchard import __version__
from orchard.settings import Settings
from orchard.upstream.background import Background
from orchard.upstream.http11 import Limits, Pool, UpstreamResponse
from orchard.upstream.proxied import ProxiedPool, proxy_configured
from orchard.upstream.urls import LinkRule

DRAIN_TIMEOUT = 30.0  # seconds closing waits for background work


class _Transport(Protocol):
    @property
    def is_closed(self) -> bool: ...

    def stream(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None = None,
        rule: LinkRule | None = None,
    ) -> AbstractAsyncContextManager[UpstreamResponse]: ...

    def stats(self) -> dict[str, int]: ...

    async def aclose(self) -> None: ...


class UpstreamClient:
    """``stream("GET", url, headers)`` for every upstream request of the
    process; owns the upstream background work."""

    def __init__(self, transport: _Transport) -> None:
        self.transport = transport
        self.background = Background()

    @property
    def is_closed(self) -> bool:
        return self.transport.is_closed

    @property
    def kind(self) -> str:
        return "proxied (httpx)" if isinstance(self.transport, ProxiedPool) else "direct"

    def stats(self) -> dict[str, int]:
        return self.transport.stats()

    def stream(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None = None,
        rule: LinkRule | None = None,
    ) -> AbstractAsyncContextManager[UpstreamResponse]:
        """``GET url``; with ``rule``, only where the upstream may send Orchard."""
        return self.transport.stream(method, url, headers, rule)

    async def aclose(self) -> None:
        await self.background.drain(DRAIN_TIMEOUT)
        await self.transport.aclose()


def create_http_client(settings: Settings) -> UpstreamClient:
    limits = Limits(
        max_connections=settings.http_max_connections,
        max_keepalive=settings.http_max_keepalive,
        connect_timeout=settings.http_connect_timeout,
        read_timeout=settings.http_read_timeout,
        user_agent=f"orchard/{__version__}",
    )
    transport = ProxiedPool(limits) if proxy_configured() else Pool(limits)
    return UpstreamClient(transport)


__all__ = ["UpstreamClient", "create_http_client"]
