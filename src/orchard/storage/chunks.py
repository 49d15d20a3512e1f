"""Helpers for async byte streams."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor

import anyio
import anyio.to_thread

from orchard.errors import TooLarge

IN_FLIGHT = 4  # groups received and waiting for the writing thread, at most
IDLE_WRITERS = 4  # writing threads kept for the next streams, at most

# Each stream being written borrows a thread of its own (its groups must be
# written in order) and gives it back when done. Starting a thread blocks
# the event loop until the thread runs: kept ones make that a one-time cost.
_idle_writers: list[ThreadPoolExecutor] = []


def _borrow_writer() -> ThreadPoolExecutor:
    if _idle_writers:
        return _idle_writers.pop()
    return ThreadPoolExecutor(1, thread_name_prefix="orchard-write")


def _give_back(writer: ThreadPoolExecutor) -> None:
    if len(_idle_writers) < IDLE_WRITERS:
        _idle_writers.append(writer)
    else:
        writer.shutdown(wait=False)


async def rechunk(chunks: AsyncIterator[bytes], size: int) -> AsyncIterator[bytes]:
    """Regroup a stream into pieces of about ``size`` bytes (the last may be
    shorter), so per-chunk work such as a thread hop is paid rarely."""
    parts: list[bytes] = []
    held = 0
    async for chunk in chunks:
        if not chunk:
            continue
        if not parts and len(chunk) >= size:
            yield chunk
            continue
        parts.append(chunk)
        held += len(chunk)
        if held >= size:
            yield b"".join(parts)
            parts.clear()
            held = 0
    if parts:
        yield b"".join(parts)


async def regroup(chunks: AsyncIterator[bytes], size: int) -> AsyncIterator[list[bytes]]:
    """Like ``rechunk``, without joining: groups of chunks of about ``size``
    bytes in all (a copy of every byte saved)."""
    group: list[bytes] = []
    held = 0
    async for chunk in chunks:
        if not chunk:
            continue
        group.append(chunk)
        held += len(chunk)
        if held >= size:
            yield group
            group = []
            held = 0
    if group:
        yield group


async def write_through(
    chunks: AsyncIterator[bytes],
    write: Callable[[list[bytes]], None],
    size: int,
    max_size: int | None = None,
    finish: Callable[[], None] | None = None,
) -> int:
    """Feed a stream to the blocking ``write`` in a worker thread, a group
    of chunks of about ``size`` bytes per call, then call ``finish`` (in the
    hop of the last group); returns the number of bytes.

    Groups are written (and hashed, if ``write`` hashes) in order, by one
    thread of their own, while the next ones are being received: up to
    ``IN_FLIGHT`` groups wait for it, so a fast source is not paused for the
    disk or the digests. A body of one group takes a single hop on anyio's
    threads instead. Raises TooLarge past ``max_size``; any error waits for
    the groups in flight, so ``write`` is never running when this returns."""

    failed = False

    def write_all(group: list[bytes], last: bool) -> None:
        nonlocal failed
        if failed:  # an earlier group failed: its error is the one raised
            return
        try:
            write(group)
            if last and finish is not None:
                finish()
        except BaseException:
            failed = True
            raise

    total = 0
    writer: ThreadPoolExecutor | None = None
    pending: deque[asyncio.Future[None]] = deque()
    held: list[bytes] = []  # the latest group: it may be the last
    try:
        async for group in regroup(chunks, size):
            total += sum(len(chunk) for chunk in group)
            if max_size is not None and total > max_size:
                raise TooLarge(f"body exceeds the limit of {max_size} bytes")
            if held:
                if writer is None:
                    writer = _borrow_writer()
                pending.append(asyncio.wrap_future(writer.submit(write_all, held, False)))
                while len(pending) > IN_FLIGHT:
                    await pending.popleft()
            held = group
        while pending:
            await pending.popleft()
        if writer is None:
            await anyio.to_thread.run_sync(write_all, held, True)
        else:
            await asyncio.wrap_future(writer.submit(write_all, held, True))
    finally:
        if pending:
            with anyio.CancelScope(shield=True):
                await asyncio.wait(pending)
            for future in pending:
                if not future.cancelled():
                    future.exception()  # seen: the first error is the one raised
        if writer is not None:
            # Idle now, but after a cancellation: then the next stream it
            # serves waits behind the group still being written, in order.
            _give_back(writer)
    return total
