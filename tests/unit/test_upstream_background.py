"""Deferred background work (upstream/background.py) and staging's overlapped writes."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from orchard.errors import TooLarge
from orchard.storage.chunks import write_through
from orchard.storage.filesystem import write_all
from orchard.upstream.background import Background


async def test_jobs_wait_for_quiet_and_run_one_at_a_time() -> None:
    background = Background(limit=1, quiet=0.2)
    order: list[str] = []
    running = 0

    def job(name: str) -> Callable[[], Awaitable[None]]:
        async def work() -> None:
            nonlocal running
            running += 1
            assert running == 1
            await asyncio.sleep(0.01)
            order.append(name)
            running -= 1

        return work

    with background.busy():  # a transfer in flight: nothing runs
        background.spawn("a", job("a"))
        background.spawn("b", job("b"))
        await asyncio.sleep(0.3)
        assert order == []
    await asyncio.sleep(0.1)
    assert order == []  # not quiet long enough yet
    for _ in range(100):
        if len(order) == 2:
            break
        await asyncio.sleep(0.05)
    assert order == ["a", "b"]
    assert len(background) == 0


async def test_jobs_wait_while_requests_keep_arriving() -> None:
    """Clients served from the cache (no upstream transfer, little CPU) still
    keep deferred work waiting: it would take the GIL from their requests."""
    background = Background(quiet=0.2)
    done = asyncio.Event()

    async def work() -> None:
        done.set()

    background.spawn("finish", work)
    for _ in range(8):  # a request every 0.1 s for 0.8 s
        background.note_request()
        await asyncio.sleep(0.1)
        assert not done.is_set()
    await asyncio.wait_for(done.wait(), 2)  # quiet at last


async def test_a_job_waits_no_longer_than_max_defer() -> None:
    background = Background(quiet=10.0, max_defer=0.2)
    done = asyncio.Event()

    async def work() -> None:
        done.set()

    with background.busy():
        background.spawn("late", work)
        await asyncio.wait_for(done.wait(), 2.0)


async def test_drain_runs_what_is_queued_and_logs_failures(
    caplog: pytest.LogCaptureFixture,
) -> None:
    background = Background(quiet=60.0)
    ran: list[str] = []

    async def ok() -> None:
        ran.append("ok")

    async def broken() -> None:
        raise RuntimeError("boom")

    with background.busy():
        background.spawn("broken", broken)
        background.spawn("ok", ok)
        with caplog.at_level(logging.ERROR, logger="orchard.upstream"):
            await background.drain(5.0)
    assert ran == ["ok"]
    assert "background work failed: broken" in caplog.text


async def test_drain_cancels_what_outlasts_it() -> None:
    background = Background(quiet=0.0)
    started = asyncio.Event()

    async def forever() -> None:
        started.set()
        await asyncio.sleep(3600)

    background.spawn("forever", forever)
    await background.drain(0.3)
    assert len(background) == 0


async def _pieces(count: int, size: int) -> AsyncIterator[bytes]:
    for i in range(count):
        await asyncio.sleep(0)
        yield bytes([i % 256]) * size


async def test_write_through_keeps_order_and_counts() -> None:
    written: list[bytes] = []
    total = await write_through(_pieces(40, 1000), written.extend, size=4096)
    assert total == 40_000
    assert b"".join(written) == b"".join(bytes([i]) * 1000 for i in range(40))


async def test_write_through_refuses_past_the_limit_and_waits_for_the_write() -> None:
    calls = 0

    def slow(group: list[bytes]) -> None:
        nonlocal calls
        calls += 1

    with pytest.raises(TooLarge):
        await write_through(_pieces(40, 1000), slow, size=4096, max_size=10_000)
    settled = calls
    await asyncio.sleep(0.05)
    assert calls == settled  # nothing writes after the error


async def test_write_through_keeps_order_behind_a_slow_writer() -> None:
    """Groups queue for the writing thread (several in flight) and still
    arrive in order, each byte once."""
    written: list[bytes] = []

    def slow(group: list[bytes]) -> None:
        time.sleep(0.002)
        written.extend(group)

    total = await write_through(_pieces(64, 1000), slow, size=2048)
    assert total == 64_000
    assert b"".join(written) == b"".join(bytes([i]) * 1000 for i in range(64))


async def test_write_through_raises_the_writers_error_and_stops() -> None:
    calls = 0

    def failing(group: list[bytes]) -> None:
        nonlocal calls
        calls += 1
        if calls == 5:
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        await write_through(_pieces(40, 1000), failing, size=2048)
    settled = calls
    await asyncio.sleep(0.05)
    assert calls == settled  # nothing writes after the error


def test_write_all_finishes_partial_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A system call may take only part of the chunks: the rest still goes,
    in order, each byte once."""
    real_writev = os.writev
    calls = 0

    def stingy(fd: int, buffers: list[bytes]) -> int:
        nonlocal calls
        calls += 1
        return os.write(fd, bytes(buffers[0])[:70_000])

    monkeypatch.setattr(os, "writev", stingy)
    chunks = [bytes([i]) * (100_000 + i) for i in range(4)]
    target = tmp_path / "blob"
    with target.open("wb") as file:
        write_all(file, list(chunks))
    monkeypatch.setattr(os, "writev", real_writev)
    assert target.read_bytes() == b"".join(chunks)
    assert calls > len(chunks)  # the partial path ran


async def test_write_through_streams_one_after_another_share_a_writing_thread() -> None:
    """A stream borrows a kept thread instead of starting one (which blocks
    the event loop); concurrent streams still get one thread each, so each
    one's groups stay in order."""
    seen: list[set[threading.Thread]] = [set() for _ in range(4)]

    def recorder(i: int) -> Callable[[list[bytes]], None]:
        return lambda group: seen[i].add(threading.current_thread())

    await write_through(_pieces(20, 1000), recorder(0), size=2048)
    await write_through(_pieces(20, 1000), recorder(1), size=2048)
    assert len(seen[0]) == len(seen[1]) == 1
    assert seen[0] == seen[1]

    await asyncio.gather(
        write_through(_pieces(20, 1000), recorder(2), size=2048),
        write_through(_pieces(20, 1000), recorder(3), size=2048),
    )
    assert len(seen[2]) == len(seen[3]) == 1
    assert seen[2] != seen[3]
