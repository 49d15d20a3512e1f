"""The cache role: bytes by category, shared by all replicas when on Redis.

Keys read ``orchard:{category}:{protocol}:{identifier}``. Immutable categories
(artifact metadata, artifact dependencies, dependency resolutions) are kept
without expiry; the others expire after their TTL from settings. A cache is
an optimisation: every method must swallow backend failures (log, count,
return a miss) so that Orchard keeps serving without it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, runtime_checkable

from orchard.settings import Settings


class Category(StrEnum):
    ARTIFACT_METADATA = "artifact-metadata"
    ARTIFACT_DEPENDENCIES = "artifact-dependencies"
    DEPENDENCY_RESOLUTIONS = "dependency-resolutions"
    UPSTREAM_SOURCES = "upstream-sources"
    PACKAGE_INDEX = "package-index"
    VERSION_LISTINGS = "version-listings"


IMMUTABLE = frozenset(
    {Category.ARTIFACT_METADATA, Category.ARTIFACT_DEPENDENCIES, Category.DEPENDENCY_RESOLUTIONS}
)


def cache_key(category: Category, protocol: str, identifier: str) -> str:
    return f"orchard:{category.value}:{protocol}:{identifier}"


def ttl_for(category: Category, settings: Settings) -> int | None:
    """Seconds to keep an entry of ``category``; None = no expiry."""
    if category in IMMUTABLE:
        return None
    return {
        Category.UPSTREAM_SOURCES: settings.cache_ttl_upstream,
        Category.PACKAGE_INDEX: settings.cache_ttl_index,
        Category.VERSION_LISTINGS: settings.cache_ttl_versions,
    }[category]


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    errors: int = 0


@runtime_checkable
class Cache(Protocol):
    """Implementations: memory.py (in-process), redis.py."""

    backend: str
    stats: CacheStats

    async def get(self, category: Category, protocol: str, identifier: str) -> bytes | None: ...

    async def set(
        self,
        category: Category,
        protocol: str,
        identifier: str,
        value: bytes,
        ttl: int | None = None,
    ) -> None:
        """Store ``value``; ``ttl`` overrides the category's TTL from settings."""
        ...

    async def delete(self, category: Category, protocol: str, identifier: str) -> None: ...

    async def clear(self, category: Category, protocol: str | None = None) -> None:
        """Drop every entry of a category (optionally of one protocol)."""
        ...

    async def status(self) -> dict[str, object]:
        """``{"enabled": bool, "connected": bool, "backend": str, ...}`` for /health."""
        ...

    async def close(self) -> None: ...
