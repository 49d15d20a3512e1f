"""The legacy upload API that twine speaks (``POST /pypi/{project}/``).

A multipart form: ``:action=file_upload``, ``protocol_version=1``, the file
as the ``content`` part, ``name``, ``version``, ``filetype`` and optional
``sha256_digest``/``md5_digest``/``blake2_256_digest``, plus metadata fields
that are ignored: the metadata that counts is read from the file itself.

Checks, all before anything is stored: the filename is a wheel or sdist
whose name and version match the form's (normalised); the file's own
METADATA names the same project and version; every digest sent matches.
The file is then stored through the core path (package format ``pypi``),
with its METADATA as a ``.metadata`` sidecar file (hosted.py), its
Requires-Python in ``Version.meta`` and its Requires-Dist as dependencies,
all in one transaction. The same bytes again → 200; other bytes under an
existing filename → 409 "already exists" (what twine's --skip-existing
looks for).
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from typing import IO

import anyio.to_thread
from sqlalchemy import select
from starlette.datastructures import FormData, UploadFile

from orchard.core import artifacts, catalog
from orchard.core.artifacts import StoredFile
from orchard.core.audit import Actor
from orchard.db.models import Package, Version
from orchard.db.session import Database
from orchard.errors import ChecksumMismatch, Conflict, InvalidInput
from orchard.metrics import UPLOADS
from orchard.protocols.pypi import hosted, names
from orchard.protocols.pypi.metadata import CoreMetadata, extract_metadata_from, store_dependencies
from orchard.storage.base import ArtifactStore, StagedBlob

MAX_FIELD = 10 * 1024 * 1024  # one non-file form field (a long description)


def _text(form: FormData, key: str, required: bool = False) -> str | None:
    value = form.get(key)
    if value is None or value == "":
        if required:
            raise InvalidInput(f"the upload form has no {key!r} field")
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"the upload form field {key!r} must be text")
    return value.strip()


def _inspect(fh: IO[bytes], filename: str, blake2: bool) -> tuple[CoreMetadata, str | None]:
    """Blocking: the file's metadata and, if asked, its BLAKE2b-256."""
    fh.seek(0)
    meta = extract_metadata_from(fh, filename)
    digest = None
    if blake2:
        fh.seek(0)
        h = hashlib.blake2b(digest_size=32)
        while chunk := fh.read(1024 * 1024):
            h.update(chunk)
        digest = h.hexdigest()
    fh.seek(0)
    return meta, digest


async def _chunks(upload: UploadFile) -> AsyncIterator[bytes]:
    await upload.seek(0)
    while chunk := await upload.read(1024 * 1024):
        yield chunk


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


def _check_digests(staged: StagedBlob, form: FormData, blake2: str | None) -> None:
    sent = {
        "sha256": (_text(form, "sha256_digest"), staged.info.sha256),
        "md5": (_text(form, "md5_digest"), staged.info.md5),
        "blake2_256": (_text(form, "blake2_256_digest"), blake2),
    }
    for algorithm, (expected, actual) in sent.items():
        if expected is not None and expected.lower() != actual:
            raise ChecksumMismatch(
                f"{algorithm} digest mismatch: the form says {expected.lower()}, "
                f"the uploaded file has {actual}"
            )


def _check_consistency(form: FormData, dist: names.Distribution, meta: CoreMetadata) -> None:
    name = _text(form, "name", required=True) or ""
    version = _text(form, "version", required=True) or ""
    if names.normalize(name) != dist.name:
        raise InvalidInput(
            f"the filename {dist.filename!r} is for project {dist.name!r}, not {name!r}"
        )
    if names.canonical_version(version) != dist.version:
        raise InvalidInput(
            f"the filename {dist.filename!r} is for version {dist.version}, not {version}"
        )
    if names.normalize(meta.name) != dist.name:
        raise InvalidInput(
            f"the metadata inside {dist.filename!r} names project {meta.name!r}, "
            f"not {dist.name!r}"
        )
    if names.canonical_version(meta.version) != dist.version:
        raise InvalidInput(
            f"the metadata inside {dist.filename!r} says version {meta.version}, "
            f"not {dist.version}"
        )
    filetype = _text(form, "filetype")
    expected = "bdist_wheel" if dist.kind == "wheel" else "sdist"
    if filetype is not None and filetype != expected:
        raise InvalidInput(f"filetype {filetype!r} does not match {dist.filename!r} ({expected})")


async def receive(
    form: FormData, db: Database, storage: ArtifactStore, actor: Actor, project: str,
    max_size: int,
) -> StoredFile:
    """Validate and store one twine upload; nothing is kept on any error."""
    if _text(form, ":action") != "file_upload":
        raise InvalidInput("unsupported :action; only 'file_upload' is supported")
    if _text(form, "protocol_version") not in (None, "1"):
        raise InvalidInput("unsupported protocol_version; only 1 is supported")
    content = form.get("content")
    if not isinstance(content, UploadFile) or not content.filename:
        raise InvalidInput("the upload form has no 'content' file part")
    dist = names.parse_filename(content.filename)
    meta, blake2 = await anyio.to_thread.run_sync(
        _inspect, content.file, dist.filename, _text(form, "blake2_256_digest") is not None
    )
    _check_consistency(form, dist, meta)
    staged = await storage.stage(_chunks(content), max_size=max_size)
    sidecar: StagedBlob | None = None
    try:
        _check_digests(staged, form, blake2)
        sidecar = await storage.stage(_once(meta.raw))
        result = await _store(db, storage, actor, project, dist, meta, staged, sidecar)
    except BaseException:
        UPLOADS.labels("rejected").inc()
        await storage.discard(staged)
        if sidecar is not None:
            await storage.discard(sidecar)
        raise
    UPLOADS.labels("stored" if result.created else "unchanged").inc()
    return result


async def _store(
    db: Database, storage: ArtifactStore, actor: Actor, project: str,
    dist: names.Distribution, meta: CoreMetadata, staged: StagedBlob, sidecar: StagedBlob,
) -> StoredFile:
    async with db.transaction() as session:
        row = await catalog.get_project(session, project)
        try:
            result = await artifacts.add_file(
                session, storage, actor, project=row, package_name=meta.name,
                version=dist.version, filename=dist.filename, staged=staged,
                package_format=hosted.FORMAT, content_type="application/octet-stream",
            )
        except Conflict as exc:
            raise Conflict(
                f"File already exists: {dist.filename!r} of {dist.name} {dist.version} "
                "was uploaded before with different content; published files are immutable"
            ) from exc
        await artifacts.add_file(
            session, storage, actor, project=row, package_name=meta.name,
            version=dist.version, filename=dist.filename + hosted.SIDECAR_SUFFIX,
            staged=sidecar, package_format=hosted.FORMAT, content_type="text/plain",
        )
        package = await session.scalar(
            select(Package).where(
                Package.project_id == row.id,
                Package.name == dist.name,
                Package.format == hosted.FORMAT,
            )
        )
        assert package is not None
        # Locked: a concurrent upload of the other file of this version updates meta too.
        version = await session.scalar(
            select(Version)
            .where(Version.package_id == package.id, Version.version == dist.version)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        assert version is not None
        files = dict((version.meta or {}).get(hosted.META_KEY, {}))
        files[dist.filename] = {"requires_python": meta.requires_python or ""}
        summary = {"summary": meta.summary} if meta.summary else {}
        version.meta = {**(version.meta or {}), **summary, hosted.META_KEY: files}
        await store_dependencies(session, result.artifact.id, meta.requires_dist)
    return result
