"""The near cache's bookkeeping: expiry, memory cap, writes racing reads,
and the content epoch that decides when everything goes."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest

from orchard.cache import epoch as epoch_module
from orchard.cache import near
from orchard.cache.epoch import SqliteEpoch
from orchard.cache.near import NearCache

HEADERS = [(b"etag", b'"abc"'), (b"content-type", b"text/html")]


class Epoch:
    """A content epoch moved by hand."""

    def __init__(self) -> None:
        self.value: int | None = 0

    def current(self) -> int | None:
        return self.value

    async def refresh(self) -> None:
        return None

    async def close(self) -> None:
        return None


def watched(ttl: float = 60, max_bytes: int = 1 << 20) -> tuple[NearCache, Epoch]:
    cache, epoch = NearCache(ttl=ttl, max_bytes=max_bytes), Epoch()
    cache.watch(epoch)
    assert cache.sync()
    return cache, epoch


def test_kept_until_the_ttl_ends(monkeypatch: pytest.MonkeyPatch) -> None:
    cache, _ = watched(ttl=5)
    cache.put("k", cache.generation, HEADERS, body=b"page")
    answer = cache.get("k")
    assert answer is not None and answer.body == b"page" and answer.etag == b'"abc"'
    later = time.monotonic() + 6
    monkeypatch.setattr(near.time, "monotonic", lambda: later)
    assert cache.get("k") is None and len(cache) == 0


def test_the_memory_cap_drops_the_oldest_first() -> None:
    cache, _ = watched(max_bytes=3 * (near.ENTRY_OVERHEAD + 100))
    for i in range(5):
        cache.put(i, cache.generation, HEADERS, body=b"x" * 100)
    assert [cache.get(i) is not None for i in range(5)] == [False, False, True, True, True]
    cache.put("huge", cache.generation, HEADERS, body=b"x" * (near.MAX_ENTRY_BYTES + 1))
    assert cache.get("huge") is None


def test_everything_goes_when_the_epoch_moves_and_only_then() -> None:
    cache, epoch = watched()
    cache.put("k", cache.generation, HEADERS, body=b"page")
    for _ in range(3):
        assert cache.sync() and cache.get("k") is not None
    epoch.value = 1
    assert cache.sync() and cache.get("k") is None and cache.drops == 1


def test_an_answer_computed_across_a_change_is_not_kept() -> None:
    cache, epoch = watched()
    started = cache.generation  # a read begins...
    epoch.value = 1  # ...a change commits and is seen before it ends
    cache.sync()
    cache.put("k", started, HEADERS, body=b"old")
    assert cache.get("k") is None


def test_nothing_is_kept_while_the_epoch_is_unknown() -> None:
    cache = NearCache(ttl=60, max_bytes=1 << 20)  # not watching anything
    assert not cache.sync()
    cache.put("k", cache.generation, HEADERS, body=b"page")
    assert cache.get("k") is None
    cache, epoch = watched()
    epoch.value = None  # e.g. the PostgreSQL listener lost its connection
    assert not cache.sync()
    cache.put("k", cache.generation, HEADERS, body=b"page")
    assert cache.get("k") is None


def test_disabled_with_a_zero_ttl() -> None:
    cache, _ = watched(ttl=0)
    cache.put("k", cache.generation, HEADERS, body=b"page")
    assert not cache.enabled and cache.get("k") is None


def test_remembered_facts_go_with_the_next_change() -> None:
    cache, epoch = watched()
    cache.remember(("project", "team"), cache.generation, "row")
    assert cache.recall(("project", "team")) == "row"
    started = cache.generation
    epoch.value = 1
    assert cache.recall(("project", "team")) is None
    cache.remember(("project", "team"), started, "read before the change")
    assert cache.recall(("project", "team")) is None


async def test_the_sqlite_epoch_sees_other_connections_commits(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("CREATE TABLE content_epoch (id INTEGER PRIMARY KEY, value INTEGER)")
    writer.execute("INSERT INTO content_epoch VALUES (1, 7)")
    epoch = SqliteEpoch(str(path))
    assert epoch.current() == 7
    writer.execute("BEGIN")
    writer.execute("UPDATE content_epoch SET value = 8")
    await epoch.refresh()
    assert epoch.current() == 7  # not committed yet
    writer.execute("COMMIT")
    await asyncio.sleep(epoch_module.READ_INTERVAL)  # read at most once a millisecond
    assert epoch.current() == 8
    writer.execute("UPDATE content_epoch SET value = 9")
    await epoch.refresh()  # after a write of this process: at once
    assert epoch.current() == 9
    writer.close()
    await epoch.close()
