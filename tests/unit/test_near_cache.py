"""The near cache's bookkeeping: expiry, memory cap, writes racing reads,
and the stamp file that worker processes of one server share."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from orchard.cache import near
from orchard.cache.near import NearCache

HEADERS = [(b"etag", b'"abc"'), (b"content-type", b"text/html")]


def test_kept_until_the_ttl_ends(monkeypatch: pytest.MonkeyPatch) -> None:
    cache = NearCache(ttl=5, max_bytes=1 << 20)
    cache.put("k", cache.generation, HEADERS, body=b"page")
    answer = cache.get("k")
    assert answer is not None and answer.body == b"page" and answer.etag == b'"abc"'
    later = time.monotonic() + 6
    monkeypatch.setattr(near.time, "monotonic", lambda: later)
    assert cache.get("k") is None and len(cache) == 0


def test_the_memory_cap_drops_the_oldest_first() -> None:
    cache = NearCache(ttl=60, max_bytes=3 * (near.ENTRY_OVERHEAD + 100))
    for i in range(5):
        cache.put(i, cache.generation, HEADERS, body=b"x" * 100)
    assert [cache.get(i) is not None for i in range(5)] == [False, False, True, True, True]
    cache.put("huge", cache.generation, HEADERS, body=b"x" * (near.MAX_ENTRY_BYTES + 1))
    assert cache.get("huge") is None


def test_an_answer_computed_across_a_write_is_not_kept() -> None:
    cache = NearCache(ttl=60, max_bytes=1 << 20)
    started = cache.generation  # a read begins...
    cache.clear()  # ...a write lands before it ends
    cache.put("k", started, HEADERS, body=b"old")
    assert cache.get("k") is None


async def test_worker_processes_share_writes_through_the_stamp(tmp_path: Path) -> None:
    stamp = tmp_path / "stamp"
    one, two = (NearCache(ttl=60, max_bytes=1 << 20, stamp=stamp) for _ in range(2))
    two.put("k", two.generation, HEADERS, body=b"page")
    assert two.get("k") is not None
    await one.invalidate()
    await asyncio.sleep(near.STAMP_INTERVAL + 0.05)
    assert two.get("k") is None  # the other process saw the stamp move


def test_disabled_with_a_zero_ttl() -> None:
    cache = NearCache(ttl=0, max_bytes=1 << 20)
    cache.put("k", cache.generation, HEADERS, body=b"page")
    assert not cache.enabled and cache.get("k") is None


def test_remembered_facts_go_with_the_next_write() -> None:
    cache = NearCache(ttl=60, max_bytes=1 << 20)
    cache.remember(("project", "team"), cache.generation, "row")
    assert cache.recall(("project", "team")) == "row"
    started = cache.generation
    cache.clear()
    assert cache.recall(("project", "team")) is None
    cache.remember(("project", "team"), started, "read before the write")
    assert cache.recall(("project", "team")) is None
