"""The connect-time address check of upstream requests (issue 15).

A link or a redirect to a host that is neither the source's own origin nor
one of its allowed file hosts is followed only when every address of that
host is public (``LinkRule.needs_vetting``). The check is made on the very
addresses the connection is then made to, so that no second lookup can
answer differently: aiohttp resolves names through this resolver (a
documented ``aiohttp.abc.AbstractResolver``), which refuses a non-public
answer while the request being connected needs vetting.

The request says so through a context variable, set by the client around
the request (``vetting``): aiohttp connects in the task that asks. Two more
things keep the check whole, both set up by ``client.py``: the connector
keeps no DNS cache (a cached answer would skip this resolver), and vetted
connections are pooled apart from the others (their pool key carries the
TLS server name), so a request that needs vetting never reuses a
connection made without it.

Behind a forward proxy the proxy connects, not Orchard: the host is then
resolved and checked here first (``check_public``), as close as Orchard
gets.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from aiohttp.abc import AbstractResolver, ResolveResult

from orchard.upstream.errors import BlockedAddress, ConnectError
from orchard.upstream.urls import public_address

_VETTING: ContextVar[bool] = ContextVar("orchard_upstream_vetting", default=False)


@contextmanager
def vetting(on: bool) -> Iterator[None]:
    """Within the block, names resolve only to all-public addresses (``on``)."""
    token = _VETTING.set(on)
    try:
        yield
    finally:
        _VETTING.reset(token)


def _refuse_private(host: str, results: list[ResolveResult]) -> None:
    if not results or not all(public_address(r["host"]) for r in results):
        raise BlockedAddress(f"{host} resolves to a non-public address")


class PublicAddressResolver(AbstractResolver):
    """``inner``'s answers, refused while vetting when any is not public."""

    def __init__(self, inner: AbstractResolver) -> None:
        self.inner = inner

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self.inner.resolve(host, port, family)
        if _VETTING.get():
            _refuse_private(host, results)
        return results

    async def check_public(self, host: str, port: int) -> None:
        """BlockedAddress unless every address of ``host`` is public."""
        if public_address(host):
            return
        try:
            results = await self.inner.resolve(host, port, socket.AF_UNSPEC)
        except OSError as exc:
            raise ConnectError(f"cannot resolve {host}: {exc}") from None
        _refuse_private(host, results)

    async def close(self) -> None:
        await self.inner.close()
