"""Finishing a cached file after its first client was answered.

Before the answer, a cold fetch computes only the digests it verifies (the
SHA-256 that identifies the blob and whatever the upstream declared) and
stores the file. The rest follows in the background (``background.py``, one
file at a time): the digests still missing (of MD5, SHA-1, SHA-512), and the
format's inspection of the bytes (PyPI: the dependencies in a wheel's or
sdist's metadata), written in one short transaction. Until then the artifact
row has "" for a missing digest. A file whose finishing was lost (the
process stopped first) is finished when it is next served from the cache.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import anyio.to_thread
from sqlalchemy import case, select, update

from orchard.db.models import Artifact
from orchard.storage.base import CHUNK_SIZE, EXTRA_DIGESTS, ArtifactStore

if TYPE_CHECKING:
    from orchard.upstream.context import UpstreamContext
    from orchard.upstream.files import Inspect

log = logging.getLogger("orchard.upstream")


def missing_digests(artifact: Artifact) -> frozenset[str]:
    return frozenset(name for name in EXTRA_DIGESTS if not getattr(artifact, name))


def _digest_file(path: Path, names: frozenset[str]) -> dict[str, str]:
    hashes = {name: hashlib.new(name, usedforsecurity=False) for name in sorted(names)}
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK_SIZE):
            for h in hashes.values():
                h.update(chunk)
    return {name: h.hexdigest() for name, h in hashes.items()}


async def _local_copy(storage: ArtifactStore, sha256: str) -> tuple[Path, bool]:
    """A path with the blob's bytes, and whether it is a temporary copy."""
    path = storage.local_path(sha256)
    if path is not None:
        return path, False
    fd, name = await anyio.to_thread.run_sync(lambda: tempfile.mkstemp(prefix="orchard-finish-"))
    path = Path(name)
    fh = os.fdopen(fd, "wb")
    try:
        try:
            async for chunk in storage.open(sha256):
                await anyio.to_thread.run_sync(fh.write, chunk)
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(fh.close)
    except BaseException:
        with anyio.CancelScope(shield=True):
            await _remove(path)
        raise
    return path, True


async def finish(
    ctx: UpstreamContext,
    sha256: str,
    missing: frozenset[str],
    inspect: Inspect | None,
    copy: Path | None = None,
) -> None:
    """Compute the ``missing`` digests of the stored blob ``sha256`` and run
    ``inspect`` on it; ``copy`` (removed afterwards) holds the same bytes
    when the storage has no local path."""
    owned = copy is not None
    try:
        if copy is None:
            copy, owned = await _local_copy(ctx.storage, sha256)
        digests = await anyio.to_thread.run_sync(_digest_file, copy, missing) if missing else {}
        after = await inspect(copy) if inspect is not None else None
        if not digests and after is None:
            return
        async with ctx.db.transaction() as session:
            if digests:
                blanks = {
                    name: case(
                        (getattr(Artifact, name) == "", value), else_=getattr(Artifact, name)
                    )
                    for name, value in digests.items()
                }
                await session.execute(update(Artifact).where(Artifact.id == sha256).values(blanks))
            else:  # the row lock serialises finishing the same bytes across replicas
                await session.execute(
                    select(Artifact.id).where(Artifact.id == sha256).with_for_update()
                )
            if after is not None:
                await after(session, sha256)
    finally:
        if owned and copy is not None:
            with anyio.CancelScope(shield=True):
                await _remove(copy)


async def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):
        await anyio.to_thread.run_sync(path.unlink)


def schedule(
    ctx: UpstreamContext,
    sha256: str,
    missing: frozenset[str],
    inspect: Inspect | None,
    copy: Path | None = None,
) -> None:
    """Finish ``sha256`` in the background, unless it is already queued."""
    if not missing and inspect is None:
        return
    queued = ctx.finishing
    if sha256 in queued:
        if copy is not None:
            ctx.background.spawn(f"drop {copy.name}", lambda: _remove(copy))
        return
    queued.add(sha256)

    async def work() -> None:
        try:
            await finish(ctx, sha256, missing, inspect, copy)
        finally:
            queued.discard(sha256)

    ctx.background.spawn(f"finish {sha256[:12]}", work)
