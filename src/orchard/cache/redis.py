"""The Redis cache, shared by all Orchard replicas (``ORCHARD_REDIS_URL``).

A cache is an optimisation, so Redis being down must never fail a request:
every method swallows Redis and socket errors, counts them in
``stats.errors`` and answers a miss. The first failure logs one warning and
marks the cache disconnected; while disconnected, operations return at once
without touching Redis, except that one operation per retry window (2 s)
tries again. The first success after that logs "reconnected" once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from orchard.cache.base import CacheStats, Category, cache_key, ttl_for
from orchard.settings import Settings

log = logging.getLogger("orchard.cache")

T = TypeVar("T")

# Seconds to open a connection. A Redis that is down refuses at once; this bounds only
# one that does not answer, and must outlast a busy event loop (0.5 s was seen to
# expire against a healthy local Redis while another replica started in the process).
CONNECT_TIMEOUT = 2.0
OPERATION_TIMEOUT = 1.0  # seconds for one command
RETRY_INTERVAL = 2.0  # seconds between attempts while disconnected
CLEAR_BATCH = 500  # keys per SCAN page and per DEL

# redis-py raises its own ConnectionError/TimeoutError (RedisError subclasses);
# the builtins and OSError can still escape from socket-level code.
_FAILURES = (RedisError, ConnectionError, TimeoutError, OSError)


def mask_url(url: str) -> str:
    """``url`` with any password replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def _glob_escape(text: str) -> str:
    """Escape Redis MATCH pattern characters in a literal."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


class RedisCache:
    """Bytes by key in Redis; see the module docstring."""

    backend = "redis"

    def __init__(self, settings: Settings, *, retry_interval: float = RETRY_INTERVAL) -> None:
        if not settings.redis_url:
            raise ValueError("RedisCache needs ORCHARD_REDIS_URL")
        self._settings = settings
        self.url = settings.redis_url
        self.retry_interval = retry_interval
        self.stats = CacheStats()
        self.connected = True  # optimistic until the first failure
        self._last_attempt = 0.0  # monotonic time of the last attempt while disconnected
        self._pool = ConnectionPool.from_url(
            self.url,
            socket_connect_timeout=CONNECT_TIMEOUT,
            socket_timeout=OPERATION_TIMEOUT,
            # One immediate retry on a broken connection, so that a pooled connection
            # left stale by a Redis restart costs nothing; our own window paces the rest.
            retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
        )
        self._redis = Redis(connection_pool=self._pool)

    @property
    def client(self) -> Redis:
        """The underlying client, for cross-replica locks (upstream/fetch.py)."""
        return self._redis

    # The Cache role ----------------------------------------------------------

    async def get(self, category: Category, protocol: str, identifier: str) -> bytes | None:
        key = cache_key(category, protocol, identifier)
        value = await self._call(lambda: self._redis.get(key), None)
        if value is None:
            self.stats.misses += 1
            return None
        self.stats.hits += 1
        return value if isinstance(value, bytes) else str(value).encode()

    async def set(
        self,
        category: Category,
        protocol: str,
        identifier: str,
        value: bytes,
        ttl: int | None = None,
    ) -> None:
        """Store ``value``; ``ttl`` overrides the category's TTL (<= 0 drops the entry)."""
        key = cache_key(category, protocol, identifier)
        seconds = ttl if ttl is not None else ttl_for(category, self._settings)
        if seconds is not None and seconds <= 0:
            await self._call(lambda: self._redis.delete(key), None)
            return
        await self._call(lambda: self._redis.set(key, value, ex=seconds), None)

    async def delete(self, category: Category, protocol: str, identifier: str) -> None:
        key = cache_key(category, protocol, identifier)
        await self._call(lambda: self._redis.delete(key), None)

    async def clear(self, category: Category, protocol: str | None = None) -> None:
        """SCAN for ``orchard:{category}:{protocol or *}:*`` and DEL in batches."""
        proto = _glob_escape(protocol) if protocol is not None else "*"
        pattern = f"orchard:{_glob_escape(category.value)}:{proto}:*"
        await self._call(lambda: self._clear(pattern), None)

    async def status(self) -> dict[str, object]:
        return {
            "enabled": True,
            "connected": await self.ping(),
            "backend": self.backend,
            "url": mask_url(self.url),
        }

    async def close(self) -> None:
        try:
            await self._redis.aclose()
            await self._pool.aclose()
        except _FAILURES as exc:
            log.debug("closing the Redis cache failed: %s", exc)

    # Helpers -----------------------------------------------------------------

    async def ping(self) -> bool:
        """True when Redis answers now (paced like every other operation)."""
        return bool(await self._call(self._ping, False))

    async def _ping(self) -> bool:
        return bool(await self._redis.ping())

    async def _clear(self, pattern: str) -> None:
        batch: list[bytes] = []
        async for key in self._redis.scan_iter(match=pattern, count=CLEAR_BATCH):
            batch.append(key)
            if len(batch) >= CLEAR_BATCH:
                await self._redis.delete(*batch)
                batch = []
        if batch:
            await self._redis.delete(*batch)

    async def _call(self, operation: Callable[[], Awaitable[T]], default: T) -> T:
        """Run ``operation`` unless paused; on failure return ``default``."""
        if not self.connected:
            now = time.monotonic()
            if now - self._last_attempt < self.retry_interval:
                return default
            self._last_attempt = now  # claimed before awaiting: one retry per window
        try:
            result = await operation()
        except _FAILURES as exc:
            self.stats.errors += 1
            self._last_attempt = time.monotonic()  # the window starts when the attempt ends
            if self.connected:
                self.connected = False
                log.warning(
                    "Redis cache at %s is unreachable (%s: %s); serving without it, "
                    "retrying every %g s",
                    mask_url(self.url),
                    type(exc).__name__,
                    exc,
                    self.retry_interval,
                )
            return default
        if not self.connected:
            self.connected = True
            log.info("Redis cache at %s reconnected", mask_url(self.url))
        return result
