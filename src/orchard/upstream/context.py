"""What the proxy code of every format needs, taken from ``app.state``
once per process: settings, database, storage, cache, the pooled HTTP
client (and its background work), the secret box for credentials and the
fetch-once registries."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from orchard.auth.crypto import SecretBox
from orchard.cache.base import Cache
from orchard.db.session import Database
from orchard.settings import Settings
from orchard.storage.base import ArtifactStore
from orchard.upstream.background import Background
from orchard.upstream.client import UpstreamClient
from orchard.upstream.fetch import ReplicaLock, SingleFlight, redis_client
from orchard.upstream.sources import Source, effective_sources, secret_box

log = logging.getLogger("orchard.upstream")

FILE_GRACE = 5.0  # seconds a stored file stays the answer of its fetch (fetch.py)
SETTLE_TIMEOUT = 30.0  # seconds shutting down waits for fetches still storing


@dataclass
class UpstreamContext:
    settings: Settings
    db: Database
    storage: ArtifactStore
    cache: Cache
    http: UpstreamClient
    box: SecretBox | None
    lock: ReplicaLock
    pages: SingleFlight[Any] = field(default_factory=SingleFlight)
    files: SingleFlight[Any] = field(default_factory=lambda: SingleFlight(grace=FILE_GRACE))
    finishing: set[str] = field(default_factory=set)  # artifacts queued in finish.py
    project_ids: dict[str, int] = field(default_factory=dict)  # built-in projects by name
    _background: Background | None = None

    @property
    def background(self) -> Background:
        """The client's background work (closing the client drains it)."""
        owned = getattr(self.http, "background", None)
        if isinstance(owned, Background):
            return owned
        if self._background is None:
            self._background = Background()
        return self._background

    async def settle(self, seconds: float = SETTLE_TIMEOUT) -> None:
        """Let the fetches in flight finish storing (on shutdown), ``seconds``
        at most; their first clients may already have all the bytes."""
        try:
            async with asyncio.timeout(seconds):
                await self.files.settle()
        except TimeoutError:
            log.warning("shutting down with upstream fetches still in flight")

    async def sources(self, fmt: str) -> list[Source]:
        return await effective_sources(self.settings, self.db, self.cache, fmt)

    def headers_for(self, source: Source | None, url: str) -> dict[str, str]:
        """The source's credentials, only for URLs on the source's own origin."""
        if source is None or not source.same_origin(url):
            return {}
        return source.auth_headers(self.box)

    @property
    def replicas(self) -> bool:
        """Whether other replicas may fetch too (they share Redis)."""
        return redis_client(self.cache) is not None

    @property
    def lock_wait(self) -> float:
        """How long a replica waits for another one's fetch of the same file."""
        return self.settings.http_connect_timeout + self.settings.http_read_timeout * 4


def upstream_context(app: Any) -> UpstreamContext:
    """The app's context, made on first use (the lifespan owns the parts)."""
    state = app.state
    ctx: UpstreamContext | None = getattr(state, "upstream", None)
    if ctx is None or ctx.http is not state.http:
        ctx = UpstreamContext(
            settings=state.settings,
            db=state.db,
            storage=state.storage,
            cache=state.cache,
            http=state.http,
            box=secret_box(state),
            lock=ReplicaLock(state.cache),
        )
        state.upstream = ctx
    return ctx
