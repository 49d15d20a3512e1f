"""Helpers for async byte streams."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import anyio
import anyio.to_thread

from orchard.errors import TooLarge


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
    write: Callable[[bytes], None],
    size: int,
    max_size: int | None = None,
    finish: Callable[[], None] | None = None,
) -> int:
    """Feed a stream to the blocking ``write`` in a worker thread, one group
    of about ``size`` bytes per thread hop, then call ``finish`` (in the hop
    of the last group); returns the number of bytes.

    A group is written (and hashed, if ``write`` hashes) while the next ones
    are being received, so a fast source is never paused for the disk or the
    digests. Raises TooLarge past ``max_size``; any error waits for the group
    in flight, so ``write`` is never running when this returns."""

    def write_all(group: list[bytes], last: bool) -> None:
        for chunk in group:
            write(chunk)
        if last and finish is not None:
            finish()

    total = 0
    pending: asyncio.Future[None] | None = None
    held: list[bytes] = []  # the latest group: it may be the last
    try:
        async for group in regroup(chunks, size):
            total += sum(len(chunk) for chunk in group)
            if max_size is not None and total > max_size:
                raise TooLarge(f"body exceeds the limit of {max_size} bytes")
            if held:
                if pending is not None:
                    await pending
                pending = asyncio.ensure_future(anyio.to_thread.run_sync(write_all, held, False))
            held = group
        if pending is not None:
            await pending
            pending = None
        await anyio.to_thread.run_sync(write_all, held, True)
    finally:
        if pending is not None and not pending.done():
            with anyio.CancelScope(shield=True):
                await asyncio.wait([pending])
        if pending is not None and pending.done() and not pending.cancelled():
            pending.exception()  # seen: the first error is the one raised
    return total
