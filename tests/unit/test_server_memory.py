"""The serving process hands freed heap pages back after work, not while idle."""

from __future__ import annotations

import asyncio
import ctypes
from typing import Any

import pytest

from orchard import server


class _FakeLibc:
    def __init__(self) -> None:
        self.trims = 0

    def malloc_trim(self, pad: int) -> int:
        self.trims += 1
        return 1


async def test_trims_after_work_and_leaves_an_idle_process_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The process's CPU time is a fake clock: other threads of the test
    process (servers of other fixtures) cannot make it look busy."""
    libc = _FakeLibc()
    monkeypatch.setattr(ctypes, "CDLL", lambda name: libc)
    cpu = [0.0]
    task = asyncio.create_task(
        server.release_freed_memory_forever(interval=0.05, clock=lambda: cpu[0])
    )
    try:
        await asyncio.sleep(0.2)
        assert libc.trims == 0  # nothing was done: nothing to give back

        cpu[0] += 0.02  # some work, as a burst of requests
        await asyncio.sleep(0.12)
        assert libc.trims == 1

        await asyncio.sleep(0.2)
        assert libc.trims == 1  # idle again
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_without_malloc_trim_it_returns_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_libc(name: Any) -> Any:
        raise OSError("no C library here")

    monkeypatch.setattr(ctypes, "CDLL", no_libc)
    await asyncio.wait_for(server.release_freed_memory_forever(interval=0.01), 1)
