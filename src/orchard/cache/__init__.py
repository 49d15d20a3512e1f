"""Cache backends: in-process (default) and Redis."""

from __future__ import annotations

from orchard.cache.base import Cache, Category
from orchard.settings import Settings

__all__ = ["Cache", "Category", "create_cache"]


def create_cache(settings: Settings) -> Cache:
    """Redis when ORCHARD_REDIS_URL is set, else the in-process cache."""
    if settings.redis_url:
        from orchard.cache.redis import RedisCache

        return RedisCache(settings)
    from orchard.cache.memory import MemoryCache

    return MemoryCache(settings)
