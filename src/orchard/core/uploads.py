"""Resumable uploads: a session, chunks appended at offsets, completion.

Chunks are stored as storage *parts* (so any replica can take the next
chunk). A chunk is accepted only if it starts at the session's current
offset: the offset moves with a conditional UPDATE and the part index is a
primary key, so of two concurrent PATCHes at one offset exactly one wins and
the other gets 409. Completion streams the parts in order through the normal
upload path and verifies the SHA-256 the client names.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from orchard.core import catalog, names
from orchard.core.audit import Actor, record
from orchard.db.base import utcnow
from orchard.db.models import UploadPart, UploadSession
from orchard.db.session import Database
from orchard.errors import Conflict, InvalidInput, NotFound, TooLarge
from orchard.storage.base import ArtifactStore

log = logging.getLogger("orchard.uploads")


def _prefix(session_id: str) -> str:
    return f"uploads/{session_id}"


async def create(
    session: AsyncSession,
    actor: Actor,
    *,
    project: str,
    package: str,
    version: str,
    filename: str,
    size: int | None,
    ttl: int,
    max_size: int,
) -> UploadSession:
    catalog.split_reference(package)
    if len(package) > names.MAX_PACKAGE_NAME:  # the column holds the reference as given
        raise InvalidInput(f"package reference {package!r} is too long")
    names.version_string(version)
    names.filename(filename)
    catalog.ensure_writable(await catalog.get_project(session, project))
    if size is not None and size > max_size:
        raise TooLarge(f"declared size {size} exceeds the limit of {max_size} bytes")
    row = UploadSession(
        id=uuid.uuid4().hex,
        project=project,
        package=package,
        version=version,
        filename=filename,
        offset=0,
        parts=0,
        size=size,
        created_by=actor.name,
        created_at=utcnow(),
        expires_at=utcnow() + timedelta(seconds=ttl),
    )
    session.add(row)
    record(
        session, actor, "upload.start", f"{project}/{package}/{version}/{filename}", upload=row.id
    )
    await session.flush()
    return row


async def get(session: AsyncSession, session_id: str) -> UploadSession:
    row = await session.get(UploadSession, session_id)
    if row is None or row.expires_at < utcnow():
        raise NotFound(f"upload {session_id!r} not found or expired")
    return row


async def append(
    db: Database,
    storage: ArtifactStore,
    session_id: str,
    offset: int,
    chunks: AsyncIterator[bytes],
    *,
    max_size: int,
    ttl: int,
) -> UploadSession:
    async with db.session() as s:
        current = await get(s, session_id)
    if offset != current.offset:
        raise Conflict(f"offset {offset} does not match the upload's offset {current.offset}")
    limit = max_size - offset
    if current.size is not None:
        limit = min(limit, current.size - offset)
    index = current.parts
    key = f"{_prefix(session_id)}/{index:06d}-{uuid.uuid4().hex[:8]}"
    try:
        size = await storage.put_part(key, chunks, max_size=limit)
    except TooLarge as exc:
        raise TooLarge(f"chunk would take the upload past its size limit: {exc}") from exc
    try:
        async with db.transaction() as s:
            moved = await s.execute(
                update(UploadSession)
                .where(
                    UploadSession.id == session_id,
                    UploadSession.offset == offset,
                    UploadSession.parts == index,
                )
                .values(
                    offset=offset + size,
                    parts=index + 1,
                    expires_at=utcnow() + timedelta(seconds=ttl),
                )
            )
            if moved.rowcount != 1:  # type: ignore[attr-defined]
                raise Conflict(f"offset {offset} was already written by another request")
            s.add(UploadPart(session_id=session_id, index=index, key=key, size=size))
            await s.flush()
            row = await get(s, session_id)
    except BaseException:
        await storage.delete_parts(key)
        raise
    return row


async def parts_stream(storage: ArtifactStore, parts: list[UploadPart]) -> AsyncIterator[bytes]:
    for part in parts:
        async for chunk in storage.open_part(part.key):
            yield chunk


async def parts_of(session: AsyncSession, upload: UploadSession) -> list[UploadPart]:
    stmt = select(UploadPart).where(UploadPart.session_id == upload.id).order_by(UploadPart.index)
    parts = list(await session.scalars(stmt))
    if upload.size is not None and upload.offset != upload.size:
        raise InvalidInput(f"upload is incomplete: {upload.offset} of {upload.size} bytes")
    return parts


async def remove(db: Database, storage: ArtifactStore, session_id: str) -> None:
    """Delete a session and its bytes (abort, or after completion)."""
    async with db.transaction() as s:
        await s.execute(delete(UploadPart).where(UploadPart.session_id == session_id))
        await s.execute(delete(UploadSession).where(UploadSession.id == session_id))
    await storage.delete_parts(_prefix(session_id) + "/")


async def expire(db: Database, storage: ArtifactStore) -> int:
    """Remove sessions idle past their expiry; returns how many."""
    async with db.session() as s:
        stale = list(
            await s.scalars(select(UploadSession.id).where(UploadSession.expires_at < utcnow()))
        )
    for session_id in stale:
        await remove(db, storage, session_id)
        log.info("upload session expired", extra={"event": "upload_expired", "upload": session_id})
    return len(stale)
