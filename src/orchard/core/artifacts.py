"""Storing files as content-addressed artifacts, and reading them back.

The write path (``add_file``) is the one place where bytes become a File:

1. the caller has staged the bytes (hashed, not yet visible);
2. in one write transaction: the artifact row is upserted, which locks it
   against a concurrent gc; the staged blob is committed into storage (or
   dropped if the blob already exists: deduplication); the File row is
   inserted (``ON CONFLICT DO NOTHING``) and the triggers count it.

A gc that wants the same artifact either finished before (the upsert then
recreates the row and the commit re-creates the blob) or waits on the row
lock and then sees ref_count > 0.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Generator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import ColumnElement, Table, bindparam, case, insert, select
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession

from orchard.core import catalog, names
from orchard.core.audit import Actor, record
from orchard.db.base import utcnow
from orchard.db.models import (
    Artifact,
    ArtifactDependency,
    AuditEntry,
    File,
    Package,
    Project,
    Version,
)
from orchard.db.prebuilt import Prebuilt
from orchard.errors import ChecksumMismatch, Conflict, NotFound
from orchard.storage.base import ArtifactStore, BlobInfo, StagedBlob

if TYPE_CHECKING:
    from orchard.db.session import Run
    from orchard.storage.filesystem import FilesystemStore

log = logging.getLogger("orchard.artifacts")

_ARTIFACTS = cast(Table, Artifact.__table__)
_PACKAGES = cast(Table, Package.__table__)
_VERSIONS = cast(Table, Version.__table__)
_FILES = cast(Table, File.__table__)
_AUDIT = cast(Table, AuditEntry.__table__)


@dataclass
class StoredFile:
    """What an upload produced."""

    project: str
    package: str
    version: str
    filename: str
    artifact: Artifact
    deduplicated: bool  # the bytes were already stored
    created: bool  # False when the same file was already there (idempotent)


def verify_checksum(staged: StagedBlob, expected_sha256: str | None) -> None:
    if expected_sha256 and expected_sha256.strip().lower() != staged.info.sha256:
        raise ChecksumMismatch(
            f"checksum mismatch: expected sha256 {expected_sha256.strip().lower()}, "
            f"received {staged.info.sha256}"
        )


def artifact_columns(info: BlobInfo, content_type: str) -> dict[str, Any]:
    """The artifact row's values that come from its bytes."""
    return {
        "id": info.sha256,
        "size": info.size,
        "md5": info.md5,
        "sha1": info.sha1,
        "sha512": info.sha512,
        "content_type": content_type,
    }


def _upsert_artifact_stmt(session: AsyncSession, staged: StagedBlob, content_type: str) -> Any:
    now = utcnow()
    stmt = catalog.insert_for(session, Artifact).values(
        **artifact_columns(staged.info, content_type),
        ref_count=0,
        created_at=now,
        touched_at=now,
    )
    # A digest not known yet ("": the proxy computes some after answering)
    # is filled in by whichever write knows it.
    known = {
        name: case(
            (getattr(Artifact, name) == "", getattr(stmt.excluded, name)),
            else_=getattr(Artifact, name),
        )
        for name in ("md5", "sha1", "sha512")
    }
    return stmt.on_conflict_do_update(index_elements=["id"], set_={"touched_at": now, **known})


async def upsert_artifact(session: AsyncSession, staged: StagedBlob, content_type: str) -> None:
    """Insert the artifact row or refresh ``touched_at``; locks the row."""
    await session.execute(_upsert_artifact_stmt(session, staged, content_type))


async def add_file(
    session: AsyncSession,
    storage: ArtifactStore,
    actor: Actor,
    *,
    project: Project,
    package_name: str,
    version: str,
    filename: str,
    staged: StagedBlob,
    package_format: str | None = None,
    content_type: str = "application/octet-stream",
    version_meta: dict[str, Any] | None = None,
    system: bool = False,
) -> StoredFile:
    """Attach staged bytes as ``filename`` of ``version``. The caller owns the
    transaction; on any error it rolls back and discards ``staged``.
    ``system``: the proxy cache storing into a built-in project."""
    if not system:
        catalog.ensure_writable(project)
    names.filename(filename)
    if package_format is None:  # a reference: ``format:name`` or a bare name
        package = await catalog.package_for_write(session, project, package_name)
    else:
        package, _ = await catalog.ensure_package(
            session, project, package_name, package_format, hosted=not system
        )
    ver = await catalog.ensure_version(session, package, version)
    if version_meta and not ver.meta:
        ver.meta = version_meta
    existing = await _existing_file(session, ver, filename)
    if existing is not None:
        return await _same_or_conflict(session, storage, project, package, ver, existing, staged)
    await catalog.refuse_case_clash(session, ver, filename)  # README.txt beside readme.txt

    await upsert_artifact(session, staged, content_type)
    deduplicated = await storage.commit(staged)
    stmt = (
        catalog.insert_for(session, File)
        .values(
            version_id=ver.id,
            filename=filename,
            artifact_id=staged.info.sha256,
            created_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["version_id", "filename"])
        .returning(File.id)
    )
    if await session.scalar(stmt) is None:  # lost a race to an identical path
        existing = await _existing_file(session, ver, filename)
        assert existing is not None
        return await _same_or_conflict(session, storage, project, package, ver, existing, staged)

    target = f"{project.name}/{package.name}/{version}/{filename}"
    record(
        session,
        actor,
        "file.upload",
        target,
        sha256=staged.info.sha256,
        size=staged.info.size,
        deduplicated=deduplicated,
    )
    log.info(
        "dedup hit" if deduplicated else "upload stored",
        extra={
            "event": "dedup" if deduplicated else "upload",
            "artifact": staged.info.sha256,
            "size": staged.info.size,
            "target": target,
        },
    )
    await session.flush()
    artifact = await session.get(Artifact, staged.info.sha256, populate_existing=True)
    assert artifact is not None
    return StoredFile(project.name, package.name, version, filename, artifact, deduplicated, True)


def _param(table: Table, column: str, name: str | None = None) -> Any:
    return bindparam(name or column, type_=table.c[column].type)


_RETURNED = ("id", "size", "md5", "sha1", "sha512", "content_type", "ref_count")


def prepare_cached_file(dialect: Dialect) -> None:
    """Build and compile ``add_cached_file``'s statements at start-up."""
    for statement in _cache_statements(dialect.name).values():
        statement.prepare(dialect)


@functools.cache
def _cache_statements(dialect: str) -> dict[str, Prebuilt]:
    """The statements of ``add_cached_file``, built once per dialect."""
    ins = catalog.dialect_insert(dialect)
    pk, vs, fs, ar, au = _PACKAGES, _VERSIONS, _FILES, _ARTIFACTS, _AUDIT
    package = ins(pk).values(
        project_id=_param(pk, "project_id"),
        name=_param(pk, "name"),
        display_name=_param(pk, "display_name"),
        format=_param(pk, "format"),
        description="",
        created_at=_param(pk, "created_at", "now"),
    )
    version = ins(vs).values(
        package_id=_param(vs, "package_id"),
        version=_param(vs, "version"),
        created_at=_param(vs, "created_at", "now"),
        meta=_param(vs, "meta"),
    )
    artifact = ins(ar).values(
        id=_param(ar, "id"),
        size=_param(ar, "size"),
        md5=_param(ar, "md5"),
        sha1=_param(ar, "sha1"),
        sha512=_param(ar, "sha512"),
        content_type=_param(ar, "content_type"),
        ref_count=0,
        created_at=_param(ar, "created_at", "now"),
        touched_at=_param(ar, "touched_at", "now"),
    )
    known = {
        name: case((ar.c[name] == "", getattr(artifact.excluded, name)), else_=ar.c[name])
        for name in ("md5", "sha1", "sha512")
    }
    file = ins(fs).values(
        version_id=_param(fs, "version_id"),
        filename=_param(fs, "filename"),
        artifact_id=_param(fs, "artifact_id"),
        created_at=_param(fs, "created_at", "now"),
    )
    audit = insert(au).values(
        at=_param(au, "at", "now"),
        actor="system",
        action="file.upload",
        target=_param(au, "target"),
        address="",
        credential="system",
        detail=_param(au, "detail"),
    )
    return {
        "package": Prebuilt(
            package.on_conflict_do_update(
                index_elements=["project_id", "name", "format"], set_={"name": pk.c.name}
            ).returning(pk.c.id),
            pk,
        ),
        "version": Prebuilt(
            version.on_conflict_do_update(
                index_elements=["package_id", "version"], set_={"version": vs.c.version}
            ).returning(vs.c.id),
            vs,
        ),
        "artifact": Prebuilt(
            artifact.on_conflict_do_update(
                index_elements=["id"], set_={"touched_at": artifact.excluded.touched_at, **known}
            ).returning(*(ar.c[name] for name in _RETURNED)),
            ar,
        ),
        "file": Prebuilt(
            file.on_conflict_do_nothing(index_elements=["version_id", "filename"]).returning(
                fs.c.id
            ),
            fs,
        ),
        "existing": Prebuilt(
            select(fs.c.artifact_id).where(
                fs.c.version_id == bindparam("version_id"), fs.c.filename == bindparam("filename")
            )
        ),
        "audit": Prebuilt(audit, au),
    }


@dataclass(frozen=True)
class CachedFile:
    """Where ``add_cached_file`` puts a proxied file, and the statements
    (with their values) to run in the same transaction after it."""

    project_id: int
    project_name: str
    package_name: str
    version: str
    filename: str
    package_format: str
    content_type: str = "application/octet-stream"
    also: tuple[tuple[Prebuilt, dict[str, Any]], ...] = ()


# What ``_cached_file_steps`` asks of its driver besides running statements.
_COMMIT_BLOB = "commit the staged blob"  # answered: whether the bytes were already stored
_DISCARD_BLOB = "discard the staged blob"
Step = tuple[Prebuilt, dict[str, Any]] | str


class _Steps:
    """Drives ``_cached_file_steps``: ``next()`` is the next step (None at
    the end, with ``result`` set), after ``answer`` was set to the last
    one's outcome (or left None)."""

    def __init__(self, steps: Generator[Step, Any, StoredFile]) -> None:
        self._steps = steps
        self.answer: Any = None
        self.result: StoredFile

    def next(self) -> Step | None:
        answer, self.answer = self.answer, None
        try:
            return self._steps.send(answer)
        except StopIteration as done:
            self.result = done.value
            return None


def _cached_file_steps(
    dialect: str, place: CachedFile, staged: StagedBlob
) -> Generator[Step, Any, StoredFile]:
    """The work of ``add_cached_file``, one step at a time: a statement to
    run (the answer is its rows) or a blob step; returns what was stored."""
    names.filename(place.filename)
    key = names.package_name(place.package_name, place.package_format)
    names.version_string(place.version)
    sql = _cache_statements(dialect)
    now = utcnow()
    info = staged.info
    ((package_id,),) = yield sql["package"], {
        "project_id": place.project_id,
        "name": key,
        "display_name": place.package_name,
        "format": place.package_format,
        "now": now,
    }
    ((version_id,),) = yield sql["version"], {
        "package_id": package_id,
        "version": place.version,
        "now": now,
        "meta": {},
    }
    (row,) = yield sql["artifact"], {**artifact_columns(info, place.content_type), "now": now}
    artifact = Artifact(**dict(zip(_RETURNED, row, strict=True)))
    where = {"version_id": version_id, "filename": place.filename}
    inserted = yield sql["file"], {**where, "artifact_id": artifact.id, "now": now}
    if not inserted:
        existing = yield sql["existing"], where
        if not existing or existing[0][0] != artifact.id:
            raise Conflict(
                f"{key} {place.version} already has a different {place.filename!r}; "
                "published versions are immutable"
            )
        yield _DISCARD_BLOB
        deduplicated, created = True, False  # the same file was already there
    else:
        deduplicated = yield _COMMIT_BLOB
        artifact.ref_count += 1  # what the trigger counted (a transient object: no UPDATE)
        target = f"{place.project_name}/{key}/{place.version}/{place.filename}"
        detail = {"sha256": artifact.id, "size": artifact.size, "deduplicated": deduplicated}
        yield sql["audit"], {"now": now, "target": target, "detail": detail}
        log.info(
            "dedup hit" if deduplicated else "upload stored",
            extra={
                "event": "dedup" if deduplicated else "upload",
                "artifact": artifact.id,
                "size": artifact.size,
                "target": target,
            },
        )
        created = True
    for statement in place.also:  # noqa: UP028 (``yield from`` a tuple refuses the rows sent back)
        yield statement
    return StoredFile(
        place.project_name, key, place.version, place.filename, artifact, deduplicated, created
    )


async def add_cached_file(
    session: AsyncSession, storage: ArtifactStore, place: CachedFile, staged: StagedBlob
) -> StoredFile:
    """``add_file`` for the caching proxy: a built-in project, the system actor.

    The same rows, triggers and guarantees in half the round trips, because
    every cold fetch holds its last bytes back until this transaction is
    done: package and version are upserted returning their ids, the artifact
    upsert returns the row (no read-back), the file is inserted before the
    blob is committed (a conflicting file costs no storage write), and the
    statements are built once (``prebuilt.py``). The returned artifact is a
    transient object without timestamps. The caller owns the transaction; on
    any error it rolls back and discards ``staged``. ``add_cached_file_blocking``
    is the same work in one thread hop on SQLite with blobs on disk."""
    steps = _Steps(_cached_file_steps(session.get_bind().dialect.name, place, staged))
    conn = await session.connection()
    while (step := steps.next()) is not None:
        if isinstance(step, tuple):
            steps.answer = await step[0].rows(conn, step[1])
        elif step == _COMMIT_BLOB:
            steps.answer = await storage.commit(staged)
        else:
            await storage.discard(staged)
    return steps.result


def add_cached_file_blocking(
    run: Run, storage: FilesystemStore, place: CachedFile, staged: StagedBlob
) -> StoredFile:
    """``add_cached_file`` inside ``Database.write_blocking`` (in its thread)."""
    steps = _Steps(_cached_file_steps("sqlite", place, staged))
    while (step := steps.next()) is not None:
        if isinstance(step, tuple):
            steps.answer = run(step[0], step[1])
        elif step == _COMMIT_BLOB:
            steps.answer = storage.commit_blocking(staged)
        else:
            storage.discard_blocking(staged)
    return steps.result


async def _existing_file(session: AsyncSession, version: Version, filename: str) -> File | None:
    return await session.scalar(
        select(File).where(File.version_id == version.id, File.filename == filename)
    )


async def _same_or_conflict(
    session: AsyncSession,
    storage: ArtifactStore,
    project: Project,
    package: Package,
    version: Version,
    existing: File,
    staged: StagedBlob,
) -> StoredFile:
    if existing.artifact_id != staged.info.sha256:
        raise Conflict(
            f"{package.name} {version.version} already has a different {existing.filename!r}; "
            "published versions are immutable"
        )
    await storage.discard(staged)
    artifact = await session.get(Artifact, existing.artifact_id, populate_existing=True)
    assert artifact is not None
    return StoredFile(
        project.name, package.name, version.version, existing.filename, artifact, True, False
    )


async def get_artifact(session: AsyncSession, sha256: str) -> Artifact:
    sha = sha256.lower()
    if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
        raise NotFound(f"artifact {sha256!r} not found")
    artifact = await session.get(Artifact, sha)
    if artifact is None:
        raise NotFound(f"artifact {sha256!r} not found")
    return artifact


@dataclass
class Reference:
    project: str
    package: str
    version: str
    filename: str
    created_at: datetime


async def references(
    session: AsyncSession,
    sha256: str,
    limit: int = 1000,
    visible: ColumnElement[bool] | None = None,
) -> list[Reference]:
    """The files that point at an artifact; ``visible`` filters projects."""
    stmt = (
        select(Project.name, Package.name, Version.version, File.filename, File.created_at)
        .join(Version, File.version_id == Version.id)
        .join(Package, Version.package_id == Package.id)
        .join(Project, Package.project_id == Project.id)
        .where(File.artifact_id == sha256)
        .order_by(Project.name, Package.name, Version.version, File.filename)
        .limit(limit)
    )
    if visible is not None:
        stmt = stmt.where(visible)
    return [Reference(*row) for row in await session.execute(stmt)]


async def dependencies(session: AsyncSession, sha256: str) -> list[ArtifactDependency]:
    stmt = select(ArtifactDependency).where(ArtifactDependency.artifact_id == sha256)
    return list(await session.scalars(stmt.order_by(ArtifactDependency.id)))
