"""Fetch once: concurrent requests for the same upstream key share one fetch.

In a process, the first caller of ``SingleFlight.run(key, work)`` starts
``work`` as a task and every concurrent caller awaits that same task (a
caller that goes away does not cancel it: the others still want the result).
Across replicas, ``ReplicaLock`` takes a Redis lock (``SET NX PX``) on the
key while the work runs, so another replica waits for the bytes to be stored
instead of fetching them a second time. Without Redis (the embedded stack is
one process), or while Redis is unreachable, only the in-process guarantee
holds; that costs at worst a duplicate fetch, never a wrong result.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, Generic, TypeVar

log = logging.getLogger("orchard.upstream")

T = TypeVar("T")

LOCK_TTL_MS = 120_000  # a replica that dies holding the lock frees it after this
POLL_INTERVAL = 0.1

_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


class SingleFlight(Generic[T]):
    """One task per key in this process. With ``grace``, a task that
    succeeded stays the answer for that many seconds more: a caller that
    looked in the database just before the result was stored joins it
    instead of starting the same work again."""

    def __init__(self, grace: float = 0.0) -> None:
        self._tasks: dict[str, asyncio.Task[T]] = {}
        self._grace = grace

    def running(self, key: str) -> asyncio.Task[T] | None:
        return self._tasks.get(key)

    async def settle(self) -> None:
        """Wait for the work running now (a fetch may still be storing what
        its first client already received)."""
        running = [task for task in self._tasks.values() if not task.done()]
        if running:
            await asyncio.wait(running)

    def start(self, key: str, work: Callable[[], Awaitable[T]]) -> tuple[asyncio.Task[T], bool]:
        """The task for ``key`` and whether this call started it."""
        task = self._tasks.get(key)
        if task is not None:
            return task, False

        def forget() -> None:
            if self._tasks.get(key) is task:
                del self._tasks[key]

        async def runner() -> T:
            ok = False
            try:
                result = await work()
                ok = True
                return result
            finally:
                if ok and self._grace > 0:
                    asyncio.get_running_loop().call_later(self._grace, forget)
                else:
                    forget()

        task = asyncio.create_task(runner(), name=f"fetch:{key}")
        task.add_done_callback(_retrieve)
        self._tasks[key] = task
        return task, True

    async def run(self, key: str, work: Callable[[], Awaitable[T]]) -> T:
        task, _ = self.start(key, work)
        return await asyncio.shield(task)


def _retrieve(task: asyncio.Task[Any]) -> None:
    """Mark a failure as seen: every waiter got it, or nobody was left to."""
    if not task.cancelled():
        task.exception()


def redis_client(cache: Any) -> Any | None:
    """The Redis client behind the cache, when the cache is Redis."""
    if getattr(cache, "backend", None) != "redis":
        return None
    return getattr(cache, "client", None)


class ReplicaLock:
    """A best-effort Redis lock per key, shared by all replicas."""

    def __init__(self, cache: Any, prefix: str = "orchard:lock:upstream") -> None:
        self._cache = cache
        self._prefix = prefix

    @asynccontextmanager
    async def hold(self, key: str, wait: float) -> AsyncIterator[bool]:
        """Hold the lock on ``key``; waits up to ``wait`` seconds for another
        holder. Yields True when held (False: no Redis, or the wait ran out)."""
        client = redis_client(self._cache)
        if client is None or not getattr(self._cache, "connected", True):
            yield False
            return
        name = f"{self._prefix}:{key}"
        token = secrets.token_hex(16)
        held = False
        deadline = time.monotonic() + wait
        try:
            while True:
                if await client.set(name, token, nx=True, px=LOCK_TTL_MS):
                    held = True
                    break
                if time.monotonic() >= deadline:
                    break
                await asyncio.sleep(POLL_INTERVAL)
        except Exception as exc:  # Redis down: the in-process guarantee remains
            log.debug("upstream lock unavailable: %s", exc)
        try:
            yield held
        finally:
            if held:
                try:
                    await client.eval(_RELEASE, 1, name, token)
                except Exception as exc:
                    log.debug("releasing the upstream lock failed: %s", exc)
