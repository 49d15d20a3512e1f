"""The one pooled async HTTP client of a process, for all upstream traffic,
and the background work that follows upstream fetches (``finish.py``):
closing the client (the lifespan does, before it closes the database and
storage) first lets that work end."""

from __future__ import annotations

import importlib.util
import sys

import httpcore
import httpx

from orchard import __version__
from orchard.settings import Settings
from orchard.upstream.background import Background

# httpcore reads an HTTP/1.1 body 64 KiB per socket read; every read then
# climbs a dozen coroutine frames to reach us, which costs more than the
# bytes on a fast upstream. Larger reads (the socket returns what it has)
# cut that per-chunk cost by about a third for wheel-sized bodies.
READ_SIZE = 256 * 1024
_H11 = httpcore.AsyncHTTP11Connection
if _H11.READ_NUM_BYTES < READ_SIZE:
    _H11.READ_NUM_BYTES = READ_SIZE

# httpcore asks ``import sniffio`` which async library runs, several times per
# request; without sniffio installed (anyio 4 no longer needs it) each try
# searches the whole sys.path and fails, about 0.3 ms of every upstream
# request. A None entry makes the failing import immediate; nothing changes
# when sniffio is installed.
if importlib.util.find_spec("sniffio") is None:
    sys.modules.setdefault("sniffio", None)  # type: ignore[arg-type]

DRAIN_TIMEOUT = 30.0  # seconds closing waits for background work


class UpstreamClient(httpx.AsyncClient):
    """``httpx.AsyncClient`` that owns the upstream background work."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.background = Background()

    async def aclose(self) -> None:
        await self.background.drain(DRAIN_TIMEOUT)
        await super().aclose()


def create_http_client(settings: Settings) -> UpstreamClient:
    limits = httpx.Limits(
        max_connections=settings.http_max_connections,
        max_keepalive_connections=settings.http_max_keepalive,
    )
    timeout = httpx.Timeout(
        connect=settings.http_connect_timeout,
        read=settings.http_read_timeout,
        write=settings.http_read_timeout,
        pool=settings.http_connect_timeout,
    )
    return UpstreamClient(
        limits=limits,
        timeout=timeout,
        follow_redirects=True,
        headers={"User-Agent": f"orchard/{__version__}"},
    )
