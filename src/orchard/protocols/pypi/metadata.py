"""Core Metadata of wheels and sdists, read safely; dependencies stored once.

Public, shared by hosted uploads and the caching proxy:

- ``extract_metadata(path, filename)`` → ``CoreMetadata``: the exact bytes of
  a wheel's ``*.dist-info/METADATA`` or an sdist's top-level ``PKG-INFO``
  (served byte for byte as the PEP 658 sidecar) and the fields parsed from
  them. Runs in a worker thread (``extract_metadata_from`` is the blocking
  core, for an already open file).
- ``store_dependencies(session, artifact_id, requires_dist)``: the
  ``Requires-Dist`` lines as ArtifactDependency rows, one INSERT for all of
  them, nothing when the artifact already has its pypi dependencies.

Archives are untrusted. The member read is bounded (``MAX_METADATA``) by
declared size and by bytes actually read; a zip's declared uncompressed
total is capped (``MAX_TOTAL``), and so are the bytes decompressed while
scanning a tarball; unsafe member paths (absolute, ``..``) and members
without a name (``""``, ``.``, ``./``), links in place
of the metadata file, truncated or corrupt archives: all are InvalidInput,
never a crash and never a hang.
"""

from __future__ import annotations

import gzip
import logging
import tarfile
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

import anyio.to_thread
from packaging.metadata import parse_email
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from orchard.db.models import ArtifactDependency
from orchard.errors import InvalidInput

log = logging.getLogger("orchard.pypi.metadata")

MAX_METADATA = 10 * 1024 * 1024  # METADATA / PKG-INFO
MAX_TOTAL = 4 * 1024 * 1024 * 1024  # declared (zip) or scanned (tar) uncompressed bytes
MAX_MEMBERS = 100_000
_CHUNK = 64 * 1024


@dataclass(frozen=True)
class CoreMetadata:
    raw: bytes  # the exact file: the PEP 658 sidecar
    name: str
    version: str
    requires_python: str | None = None
    requires_dist: list[str] = field(default_factory=list)
    summary: str | None = None


def _safe(name: str) -> PurePosixPath:
    path = PurePosixPath(name)
    if not path.parts:  # "", "." or "./": a member without a name
        raise InvalidInput(f"archive member {name!r} has no name")
    if name.startswith(("/", "\\")) or ".." in path.parts or "\\" in name or ":" in path.parts[0]:
        raise InvalidInput(f"archive member {name!r} has an unsafe path")
    return path


def _bounded_read(fh: IO[bytes], limit: int, what: str) -> bytes:
    parts, size = [], 0
    while chunk := fh.read(_CHUNK):
        size += len(chunk)
        if size > limit:
            raise InvalidInput(f"{what} is larger than {limit} bytes")
        parts.append(chunk)
    return b"".join(parts)


def _from_zip(fileobj: IO[bytes], wanted: str) -> bytes:
    """``wanted``: "dist-info" (wheel) or "PKG-INFO" (zip sdist)."""
    with zipfile.ZipFile(fileobj) as zf:
        infos = zf.infolist()
        if len(infos) > MAX_MEMBERS:
            raise InvalidInput(f"archive has more than {MAX_MEMBERS} members")
        if sum(i.file_size for i in infos) > MAX_TOTAL:
            raise InvalidInput("archive expands to more than the allowed size")
        found = []
        for info in infos:
            parts = _safe(info.filename).parts
            if len(parts) != 2:
                continue
            wheel = parts[0].endswith(".dist-info") and parts[1] == "METADATA"
            sdist = parts[1] == "PKG-INFO"
            if (wheel and wanted == "dist-info") or (sdist and wanted == "PKG-INFO"):
                found.append(info)
        if not found:
            where = "*.dist-info/METADATA" if wanted == "dist-info" else "PKG-INFO"
            raise InvalidInput(f"archive has no {where}")
        if len(found) > 1:
            raise InvalidInput("archive has more than one metadata file")
        info = found[0]
        if info.is_dir() or info.file_size > MAX_METADATA:
            raise InvalidInput(f"{info.filename} is larger than {MAX_METADATA} bytes")
        with zf.open(info) as fh:
            raw = _bounded_read(fh, MAX_METADATA, info.filename)
        if len(raw) != info.file_size:  # zipfile checks the CRC; sizes must agree too
            raise InvalidInput(f"{info.filename}: size differs from the archive directory")
        return raw


class _Capped:
    """A read-only stream that refuses to yield more than ``limit`` bytes."""

    def __init__(self, inner: gzip.GzipFile, limit: int) -> None:
        self.inner, self.left = inner, limit

    def read(self, n: int = -1) -> bytes:
        data = self.inner.read(n if n >= 0 else _CHUNK * 16)
        self.left -= len(data)
        if self.left < 0:
            raise InvalidInput("archive expands to more than the allowed size")
        return data


def _from_tar(fileobj: IO[bytes]) -> bytes:
    with gzip.GzipFile(fileobj=fileobj, mode="rb") as gz:
        stream: Any = _Capped(gz, MAX_TOTAL)
        with tarfile.open(fileobj=stream, mode="r|") as tf:
            for count, member in enumerate(tf):
                if count > MAX_MEMBERS:
                    raise InvalidInput(f"archive has more than {MAX_MEMBERS} members")
                parts = _safe(member.name).parts
                if len(parts) != 2 or parts[1] != "PKG-INFO":
                    continue
                if not member.isfile():
                    raise InvalidInput(f"{member.name} is not a regular file")
                if member.size > MAX_METADATA:
                    raise InvalidInput(f"{member.name} is larger than {MAX_METADATA} bytes")
                fh = tf.extractfile(member)
                assert fh is not None  # a regular file
                raw = _bounded_read(fh, MAX_METADATA, member.name)
                if len(raw) != member.size:
                    raise InvalidInput(f"{member.name} is truncated")
                return raw
    raise InvalidInput("archive has no top-level PKG-INFO")


def _parse(raw: bytes) -> CoreMetadata:
    fields, _unparsed = parse_email(raw)
    name, version = fields.get("name"), fields.get("version")
    if not name or not version:
        raise InvalidInput("the metadata file has no Name or no Version")
    return CoreMetadata(
        raw=raw,
        name=name,
        version=version,
        requires_python=fields.get("requires_python"),
        requires_dist=list(fields.get("requires_dist", [])),
        summary=fields.get("summary"),
    )


_CORRUPT = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    tarfile.TarError,
    EOFError,
    gzip.BadGzipFile,
    zlib.error,
    OSError,
    ValueError,
    NotImplementedError,  # an unsupported zip compression method
    RuntimeError,  # an encrypted zip member
    KeyError,
    IndexError,
    UnicodeError,
)


def extract_metadata_from(fileobj: IO[bytes], filename: str) -> CoreMetadata:
    """Blocking: the Core Metadata inside an open wheel or sdist."""
    try:
        if filename.endswith(".whl"):
            raw = _from_zip(fileobj, "dist-info")
        elif filename.endswith(".zip"):
            raw = _from_zip(fileobj, "PKG-INFO")
        elif filename.endswith(".tar.gz"):
            raw = _from_tar(fileobj)
        else:
            raise InvalidInput(f"{filename!r} is neither a wheel nor an sdist")
        return _parse(raw)
    except InvalidInput as exc:
        raise InvalidInput(f"{filename}: {exc.message}") from exc
    except _CORRUPT as exc:
        raise InvalidInput(f"{filename} is not a valid archive ({exc.__class__.__name__})") from exc


async def extract_metadata(path: Path, filename: str) -> CoreMetadata:
    """The Core Metadata of the wheel or sdist at ``path`` (named ``filename``),
    read in a worker thread. InvalidInput for anything malformed or unsafe."""

    def work() -> CoreMetadata:
        with path.open("rb") as fh:
            return extract_metadata_from(fh, filename)

    return await anyio.to_thread.run_sync(work)


def dependency_rows(artifact_id: str, requires_dist: list[str]) -> list[dict[str, str]]:
    """ArtifactDependency values for ``Requires-Dist`` lines; invalid lines
    are skipped (they never fail an upload that pip would install)."""
    rows = []
    for line in requires_dist:
        try:
            req = Requirement(line)
        except InvalidRequirement:
            log.info("skipping an invalid Requires-Dist", extra={"artifact": artifact_id})
            continue
        spec = str(req.specifier)
        if req.extras:
            spec = f"[{','.join(sorted(req.extras))}]{spec}"
        if req.url:
            spec = f"{spec} @ {req.url}".strip()
        marker = str(req.marker) if req.marker else ""
        if marker:
            spec = f"{spec}; {marker}"
        kind = "optional" if "extra" in marker else "runtime"
        rows.append(
            {
                "artifact_id": artifact_id,
                "format": "pypi",
                "name": canonicalize_name(req.name)[:214],
                "specifier": spec,
                "kind": kind,
            }
        )
    return rows


async def store_dependencies(
    session: AsyncSession, artifact_id: str, requires_dist: list[str]
) -> int:
    """Record an artifact's ``Requires-Dist`` in ONE batch INSERT; does
    nothing when the artifact already has pypi dependency rows (the same
    bytes uploaded or cached again). Returns the number of rows inserted.

    Call it in a transaction that holds the artifact row lock (the one that
    stored the artifact, ``upsert_artifact``, or the proxy's finishing one,
    ``upstream/finish.py``), which serialises two concurrent first uploads
    of the same bytes."""
    existing = await session.scalar(
        select(ArtifactDependency.id)
        .where(ArtifactDependency.artifact_id == artifact_id, ArtifactDependency.format == "pypi")
        .limit(1)
    )
    if existing is not None:
        return 0
    rows = dependency_rows(artifact_id, requires_dist)
    if rows:
        await session.execute(insert(ArtifactDependency).values(rows))  # one statement
    return len(rows)
