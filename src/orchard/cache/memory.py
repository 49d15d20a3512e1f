"""The in-process cache: an LRU bounded by total bytes, one per Orchard process.

The default when ``ORCHARD_REDIS_URL`` is unset. Entries of TTL categories
expire on the monotonic clock; immutable categories never expire but are
still evicted, least recently used first, when the byte bound is reached.
An entry larger than the whole bound is not stored. Only value bytes count
towards the bound. Everything runs in one event loop without awaiting, so
no lock is needed.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass

from orchard.cache.base import CacheStats, Category, cache_key, ttl_for
from orchard.settings import Settings

DEFAULT_MAX_BYTES = 64 * 1024 * 1024


@dataclass(slots=True)
class _Entry:
    value: bytes
    expires_at: float | None  # time.monotonic() deadline; None = never

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and now >= self.expires_at


class MemoryCache:
    """Bytes by key in this process; see the module docstring."""

    backend = "memory"

    def __init__(self, settings: Settings, *, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self._settings = settings
        self.max_bytes = max_bytes
        self.stats = CacheStats()
        self._entries: OrderedDict[str, _Entry] = OrderedDict()  # oldest use first
        self._bytes = 0

    # The Cache role ----------------------------------------------------------

    async def get(self, category: Category, protocol: str, identifier: str) -> bytes | None:
        key = cache_key(category, protocol, identifier)
        entry = self._entries.get(key)
        if entry is None or entry.expired(time.monotonic()):
            if entry is not None:
                self._drop(key)
            self.stats.misses += 1
            return None
        self._entries.move_to_end(key)
        self.stats.hits += 1
        return entry.value

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
        self._drop(key)
        seconds = ttl if ttl is not None else ttl_for(category, self._settings)
        size = len(value)
        if (seconds is not None and seconds <= 0) or size > self.max_bytes:
            return
        expires_at = None if seconds is None else time.monotonic() + seconds
        self._entries[key] = _Entry(bytes(value), expires_at)
        self._bytes += size
        self._evict()

    async def delete(self, category: Category, protocol: str, identifier: str) -> None:
        self._drop(cache_key(category, protocol, identifier))

    async def clear(self, category: Category, protocol: str | None = None) -> None:
        prefix = f"orchard:{category.value}:" + (f"{protocol}:" if protocol is not None else "")
        for key in [k for k in self._entries if k.startswith(prefix)]:
            self._drop(key)

    async def status(self) -> dict[str, object]:
        self._purge_expired()
        return {
            "enabled": True,
            "connected": True,
            "backend": self.backend,
            "entries": len(self._entries),
            "bytes": self._bytes,
        }

    async def close(self) -> None:
        self._entries.clear()
        self._bytes = 0

    # Introspection -------------------------------------------------------------

    def keys(self) -> Iterator[str]:
        """The live keys, least recently used first (for tests and debugging)."""
        now = time.monotonic()
        return iter([k for k, e in self._entries.items() if not e.expired(now)])

    # Internals -------------------------------------------------------------------

    def _drop(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._bytes -= len(entry.value)

    def _purge_expired(self) -> None:
        now = time.monotonic()
        for key in [k for k, e in self._entries.items() if e.expired(now)]:
            self._drop(key)

    def _evict(self) -> None:
        if self._bytes <= self.max_bytes:
            return
        self._purge_expired()  # free what is dead before evicting what is live
        while self._bytes > self.max_bytes:
            _, entry = self._entries.popitem(last=False)
            self._bytes -= len(entry.value)
