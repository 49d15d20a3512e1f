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

Consistency. The cache belongs to one content epoch (``cache/epoch.py``: a
number in the database that every committed change of what a read answers
raises, whoever made it). Each lookup first compares the epoch with the one
the entries were made under; when it moved, every entry and fact goes at
once. An answer computed while the epoch moved is not kept (the
``generation`` it started under is gone: it may predate the change). Until
an epoch is watched (``watch``), nothing is kept. Failed requests and
requests that change nothing drop nothing. Answers with credentials are
never cached: permissions are checked against the database on every
authenticated request.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from orchard.cache.epoch import ContentEpoch

MAX_ENTRY_BYTES = 2 * 1024 * 1024  # bigger pages are not worth holding
ENTRY_OVERHEAD = 512  # bytes counted per entry besides its body
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

    def __init__(self, ttl: float, max_bytes: int) -> None:
        self.ttl = ttl
        self.max_bytes = max_bytes
        self.generation = 0
        self.hits = 0
        self.drops = 0  # times the epoch moved and everything went
        self._entries: dict[Any, Answer] = {}
        self._bytes = 0
        self._memo: dict[Any, tuple[float, Any]] = {}
        self._epoch: ContentEpoch | None = None
        self._seen: int | None = None  # the epoch the entries were made under

    @property
    def enabled(self) -> bool:
        return self.ttl > 0 and self.max_bytes > 0

    def __len__(self) -> int:
        return len(self._entries)

    def watch(self, epoch: ContentEpoch | None) -> None:
        """Follow ``epoch`` from now on (None: stop keeping anything)."""
        self._epoch = epoch
        self._seen = None
        self.clear()

    def sync(self) -> bool:
        """Forget everything if the content epoch moved; whether entries may
        be used and kept (the epoch is known)."""
        epoch = self._epoch
        if epoch is None:
            return False
        seen = epoch.current()
        if seen != self._seen:
            self._seen = seen
            if self._entries or self._memo:
                self.drops += 1
            self.clear()
        return seen is not None

    async def refresh(self) -> None:
        """Learn the committed epoch now (after a write of this process) and
        forget everything if it moved."""
        if self._epoch is not None:
            await self._epoch.refresh()
            self.sync()

    async def close(self) -> None:
        if self._epoch is not None:
            await self._epoch.close()
        self.watch(None)

    def get(self, key: Any) -> Answer | None:
        """The kept answer for ``key``; call ``sync`` first."""
        now = time.monotonic()
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
        if not self.enabled or generation != self.generation or self._seen is None:
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
        if not self.sync():
            return None
        now = time.monotonic()
        kept = self._memo.get(key)
        if kept is None:
            return None
        if kept[0] < now:
            del self._memo[key]
            return None
        return kept[1]

    def remember(self, key: Any, generation: int, value: Any) -> None:
        """Keep ``value`` (read under ``generation``) until the next write."""
        if not self.enabled or generation != self.generation or self._seen is None:
            return
        if len(self._memo) >= MAX_MEMO:
            self._memo.pop(next(iter(self._memo)))
        self._memo[key] = (time.monotonic() + self.ttl, value)

    def _drop(self, key: Any) -> None:
        answer = self._entries.pop(key, None)
        if answer is not None:
            self._bytes -= answer.size

    def clear(self) -> None:
        """Forget everything (answers and facts)."""
        self.generation += 1
        self._entries.clear()
        self._memo.clear()
        self._bytes = 0
