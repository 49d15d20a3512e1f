"""Checking storage against the database: every blob re-hashed."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import anyio.to_thread
from sqlalchemy import select

from orchard.db.models import Artifact
from orchard.db.session import Database
from orchard.errors import NotFound
from orchard.storage.base import ArtifactStore

log = logging.getLogger("orchard.fsck")


@dataclass
class FsckReport:
    checked: int = 0
    missing: list[str] = field(default_factory=list)  # row, no blob
    corrupt: list[str] = field(default_factory=list)  # blob whose bytes don't hash to its id
    orphaned: list[str] = field(default_factory=list)  # blob, no row

    @property
    def ok(self) -> bool:
        return not (self.missing or self.corrupt or self.orphaned)


async def rehash(storage: ArtifactStore, sha256: str) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    async for chunk in storage.open(sha256):
        await anyio.to_thread.run_sync(digest.update, chunk)
        size += len(chunk)
    return digest.hexdigest(), size


async def check(
    db: Database, storage: ArtifactStore, progress: Callable[[str], None] | None = None
) -> FsckReport:
    report = FsckReport()
    async with db.session() as session:
        rows = {a: s for a, s in await session.execute(select(Artifact.id, Artifact.size))}
    seen: set[str] = set()
    async for blob in storage.list():
        seen.add(blob.sha256)
        if blob.sha256 not in rows:
            report.orphaned.append(blob.sha256)
            continue
        report.checked += 1
        try:
            digest, size = await rehash(storage, blob.sha256)
        except NotFound:
            report.missing.append(blob.sha256)
            continue
        if digest != blob.sha256 or size != rows[blob.sha256]:
            report.corrupt.append(blob.sha256)
            log.warning("corrupt blob", extra={"event": "fsck_corrupt", "artifact": blob.sha256})
        if progress:
            progress(blob.sha256)
    report.missing.extend(sorted(set(rows) - seen))
    return report
