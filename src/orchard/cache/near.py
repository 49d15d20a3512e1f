"""The near cache: ready protocol answers in this process's memory.

A warm ``pip install`` asks for the same index pages and files again and
again; answering each from the database and re-rendering it costs
milliseconds, while answering from memory costs microseconds. The near cache
keeps, per process, what the application answered to *anonymous* GETs of
protocol URLs (the page bytes with their headers, or the path of a file on
disk), for at most ``ORCHARD_CACHE_TTL_LOCAL`` seconds and
``ORCHARD_CACHE_LOCAL_MAX_BYTES`` bytes (the oldest entries go first).

Beside whole answers it keeps small facts that requests are built from
(``remember``/``recall``): a project's row, so that a cold page or file
request for a public project needs no database read to find it.

Consistency. Every write request through this process bumps the
generation and drops every entry at once, and an answer computed while a
write happened is not kept (it may predate the write). With Redis, every
write is also published on ``orchard:invalidate`` and each replica's
listener drops its entries, so a yank, an upload or a project turned private
shows at once on all replicas. Worker processes of one server (``serve
--workers N``) also share a stamp file in the data directory: a write
touches it, and each process looks at it at most every ``STAMP_INTERVAL``
seconds. Only when both are out of reach (replicas without Redis, or Redis
down) does the TTL alone bound how long another process answers from its
copy. Answers with credentials are never cached: permissions are checked
against the database on every authenticated request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("orchard.cache")

CHANNEL = "orchard:invalidate"
RETRY = 2.0  # seconds between attempts to (re)subscribe
MAX_ENTRY_BYTES = 2 * 1024 * 1024  # bigger pages are not worth holding
ENTRY_OVERHEAD = 512  # bytes counted per entry besides its body
STAMP_INTERVAL = 0.1  # seconds between looks at the stamp file
MAX_MEMO = 1024  # small facts kept (see ``remember``)


@dataclass(slots=True)
class Answer:
    """One ready response: status 200 headers and a body or a file path."""

    headers: list[tuple[bytes, bytes]]
    body: bytes | None
    path: str | None
    etag: bytes | None
    route: str  # the route template, for metrics
    expires: float
    size: int  # what it costs here
    length: int  # bytes sent (Content-Length)


class NearCache:
    """See the module docstring."""

    def __init__(self, ttl: float, max_bytes: int, stamp: Path | None = None) -> None:
        self.ttl = ttl
        self.max_bytes = max_bytes
        self.stamp = stamp
        self._stamp_seen: int | None = self._read_stamp()
        self._stamp_due = 0.0
        self.generation = 0
        self.hits = 0
        self._entries: dict[Any, Answer] = {}
        self._bytes = 0
        self._memo: dict[Any, tuple[float, Any]] = {}
        self._publish: Any = None  # async callable set by the Redis listener
        self._id = uuid.uuid4().hex.encode()  # our own invalidations come back: skip them
        self._listener: asyncio.Task[None] | None = None

    @property
    def enabled(self) -> bool:
        return self.ttl > 0 and self.max_bytes > 0

    def __len__(self) -> int:
        return len(self._entries)

    def _read_stamp(self) -> int | None:
        if self.stamp is None:
            return None
        try:
            return os.stat(self.stamp).st_mtime_ns
        except OSError:
            return None

    def _check_stamp(self, now: float) -> None:
        """Another process of this server wrote: forget everything."""
        self._stamp_due = now + STAMP_INTERVAL
        seen = self._read_stamp()
        if seen != self._stamp_seen:
            self._stamp_seen = seen
            self.clear()

    def _now(self) -> float:
        """The time, after forgetting everything if another process wrote."""
        now = time.monotonic()
        if self.stamp is not None and now >= self._stamp_due:
            self._check_stamp(now)
        return now

    def get(self, key: Any) -> Answer | None:
        now = self._now()
        answer = self._entries.get(key)
        if answer is None:
            return None
        if answer.expires < now:
            self._drop(key)
            return None
        self.hits += 1
        return answer

    def put(
        self,
        key: Any,
        generation: int,
        headers: list[tuple[bytes, bytes]],
        *,
        body: bytes | None = None,
        path: str | None = None,
        route: str = "unmatched",
    ) -> None:
        """Keep an answer computed under ``generation`` (dropped if stale)."""
        if not self.enabled or generation != self.generation:
            return
        size = ENTRY_OVERHEAD + (len(body) if body is not None else 0)
        if size > MAX_ENTRY_BYTES or size > self.max_bytes:
            return
        etag = next((v for k, v in headers if k == b"etag"), None)
        declared = next((v for k, v in headers if k == b"content-length"), b"")
        length = int(declared) if declared.isdigit() else len(body or b"")
        if key in self._entries:
            self._drop(key)
        while self._entries and self._bytes + size > self.max_bytes:
            self._drop(next(iter(self._entries)))
        expires = time.monotonic() + self.ttl
        self._entries[key] = Answer(headers, body, path, etag, route, expires, size, length)
        self._bytes += size

    # --- small facts the answers are made of (e.g. a project's row) -----------------------------

    def recall(self, key: Any) -> Any | None:
        """A value kept by ``remember``, under the same rules as answers."""
        now = self._now()
        kept = self._memo.get(key)
        if kept is None:
            return None
        if kept[0] < now:
            del self._memo[key]
            return None
        return kept[1]

    def remember(self, key: Any, generation: int, value: Any) -> None:
        """Keep ``value`` (read under ``generation``) until the next write."""
        if not self.enabled or generation != self.generation:
            return
        if len(self._memo) >= MAX_MEMO:
            self._memo.pop(next(iter(self._memo)))
        self._memo[key] = (time.monotonic() + self.ttl, value)

    def _drop(self, key: Any) -> None:
        answer = self._entries.pop(key, None)
        if answer is not None:
            self._bytes -= answer.size

    def clear(self) -> None:
        """Forget everything, here only; see ``invalidate``."""
        self.generation += 1
        self._entries.clear()
        self._memo.clear()
        self._bytes = 0

    async def invalidate(self) -> None:
        """A write happened: forget everything here and tell the other processes."""
        self.clear()
        if self.stamp is not None:
            try:
                await asyncio.to_thread(_touch, self.stamp)
            except OSError as exc:
                log.warning("cannot touch the near-cache stamp %s: %s", self.stamp, exc)
        if self._publish is not None:
            try:
                await self._publish()
            except Exception as exc:  # Redis down: the TTL bounds the others' copies
                log.debug("publishing an invalidation failed: %s", exc)

    # --- replicas (Redis pub/sub) ----------------------------------------------------------------

    def start_listener(self, redis: Any) -> None:
        """Listen for other replicas' writes on ``redis`` (a redis.asyncio client)."""
        if not self.enabled or self._listener is not None:
            return

        async def publish() -> None:
            async with asyncio.timeout(1.0):
                await redis.publish(CHANNEL, self._id)

        self._publish = publish
        self._listener = asyncio.create_task(self._listen(redis), name="near-cache-listener")

    async def _listen(self, redis: Any) -> None:
        while True:
            pubsub = redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(CHANNEL)
                # Whatever was published while we were not listening is lost: start clean.
                self.clear()
                async for message in pubsub.listen():
                    if message.get("data") != self._id:
                        self.clear()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.debug("near-cache invalidation listener: %s; retrying", exc)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
            await asyncio.sleep(RETRY)

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None
        self._publish = None


def _touch(path: Path) -> None:
    now = time.time_ns()
    try:
        os.utime(path, ns=(now, now))
    except FileNotFoundError:
        path.touch()
        os.utime(path, ns=(now, now))
