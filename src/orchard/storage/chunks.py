"""Helpers for async byte streams."""

from __future__ import annotations

from collections.abc import AsyncIterator


async def rechunk(chunks: AsyncIterator[bytes], size: int) -> AsyncIterator[bytes]:
    """Regroup a stream into pieces of about ``size`` bytes (the last may be
    shorter), so per-chunk work such as a thread hop is paid rarely."""
    buffer = bytearray()
    async for chunk in chunks:
        if not chunk:
            continue
        if not buffer and len(chunk) >= size:
            yield chunk
            continue
        buffer += chunk
        if len(buffer) >= size:
            yield bytes(buffer)
            buffer.clear()
    if buffer:
        yield bytes(buffer)
