"""Garbage collection: delete blobs nothing references any more.

An artifact is collectable when its ref_count is 0 and it was last touched
longer ago than the grace period. Each one is removed in its own write
transaction: the row is deleted (which takes its lock, so an upload that is
about to reference it either finished first and made ref_count positive, or
waits and then recreates the row and the blob), then the blob is deleted,
then the transaction commits. A blob is never deleted while a row says it
is referenced. Blobs in storage with no row at all (an upload that crashed
between storing and committing) are removed once older than the grace; each
is first claimed inside a write transaction by inserting a placeholder row
for its id, so an upload whose (not yet committed) transaction is about to
reference that blob is either waited for, and the blob kept, or waits for
gc and then stores the blob again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import delete, select

from orchard.core import catalog, uploads
from orchard.db.base import utcnow
from orchard.db.models import Artifact
from orchard.db.session import Database
from orchard.metrics import GC_FREED
from orchard.storage.base import ArtifactStore

log = logging.getLogger("orchard.gc")

BATCH = 500
STAGING_MIN_AGE = 3600


@dataclass
class GcReport:
    dry_run: bool
    freed: list[tuple[str, int]] = field(default_factory=list)  # (sha256, size)
    orphans: list[tuple[str, int]] = field(default_factory=list)
    expired_uploads: int = 0
    purged_staging: int = 0

    @property
    def freed_bytes(self) -> int:
        return sum(size for _, size in self.freed) + sum(size for _, size in self.orphans)


async def collect(
    db: Database, storage: ArtifactStore, *, grace: int, dry_run: bool = False
) -> GcReport:
    report = GcReport(dry_run=dry_run)
    cutoff = utcnow() - timedelta(seconds=grace)
    async with db.session() as session:
        candidates = list(
            await session.execute(
                select(Artifact.id, Artifact.size)
                .where(Artifact.ref_count == 0, Artifact.touched_at < cutoff)
                .order_by(Artifact.touched_at)
            )
        )
    for sha256, size in candidates:
        if dry_run:
            report.freed.append((sha256, size))
            continue
        if await _collect_one(db, storage, sha256, cutoff):
            report.freed.append((sha256, size))
    await _collect_orphans(db, storage, report, cutoff)
    if not dry_run:
        report.expired_uploads = await uploads.expire(db, storage)
        # Staged copies are written continuously while an upload runs; one
        # untouched for this long belongs to an upload that died.
        stale = utcnow() - timedelta(seconds=max(grace, STAGING_MIN_AGE))
        report.purged_staging = await storage.purge_staging(stale)
        GC_FREED.inc(report.freed_bytes)
    log.info(
        "gc finished",
        extra={
            "event": "gc",
            "dry_run": dry_run,
            "artifacts": len(report.freed),
            "orphans": len(report.orphans),
            "bytes": report.freed_bytes,
        },
    )
    return report


async def _collect_one(db: Database, storage: ArtifactStore, sha256: str, cutoff: object) -> bool:
    async with db.transaction() as session:
        gone = await session.scalar(
            delete(Artifact)
            .where(Artifact.id == sha256, Artifact.ref_count == 0, Artifact.touched_at < cutoff)
            .returning(Artifact.id)
        )
        if gone is None:
            return False  # referenced again, or touched, since we looked
        await storage.delete(sha256)
    log.info("gc deleted artifact", extra={"event": "gc_delete", "artifact": sha256})
    return True


async def _collect_orphan(db: Database, storage: ArtifactStore, sha256: str) -> bool:
    """Delete a blob that had no row when we looked, unless one appeared.

    A plain read cannot tell "no row" from "a row an upload has inserted but
    not committed yet" (the upload has already put the blob in place, or
    found it there and deduplicated). Inserting a placeholder row for the id
    can: it waits for such an upload (PostgreSQL: on the unique key; SQLite:
    on the write lock) and then conflicts. The placeholder never outlives
    this transaction.
    """
    now = utcnow()
    async with db.transaction() as session:
        claimed = await session.scalar(
            catalog.insert_for(session, Artifact)
            .values(
                id=sha256,
                size=0,
                md5="",
                sha1="",
                sha512="",
                ref_count=0,
                content_type="application/octet-stream",
                created_at=now,
                touched_at=now,
            )
            .on_conflict_do_nothing(index_elements=["id"])
            .returning(Artifact.id)
        )
        if claimed is None:
            return False  # an upload references it now
        await storage.delete(sha256)
        await session.execute(delete(Artifact).where(Artifact.id == sha256))
    return True


async def _collect_orphans(
    db: Database, storage: ArtifactStore, report: GcReport, cutoff: object
) -> None:
    batch: list[tuple[str, int]] = []

    async def flush() -> None:
        async with db.session() as session:
            known = set(
                await session.scalars(
                    select(Artifact.id).where(Artifact.id.in_([s for s, _ in batch]))
                )
            )
        for sha256, size in batch:
            if sha256 in known:
                continue
            if not report.dry_run:
                if not await _collect_orphan(db, storage, sha256):
                    continue
                log.info(
                    "gc deleted orphaned blob", extra={"event": "gc_orphan", "artifact": sha256}
                )
            report.orphans.append((sha256, size))
        batch.clear()

    async for blob in storage.list():
        if blob.modified < cutoff:  # type: ignore[operator]
            batch.append((blob.sha256, blob.size))
            if len(batch) >= BATCH:
                await flush()
    if batch:
        await flush()
