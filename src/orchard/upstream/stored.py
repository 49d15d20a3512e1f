"""Storing a file fetched from an upstream, for every format.

A verified upstream file goes into the built-in ``proxy`` project under
(format, package name, version, filename), through the one write path for
adding a file (``core/artifacts.add_cached_file``), with the URL → artifact
row (``cached_urls``) that makes sure a URL is never fetched twice. The
lookup and the upsert are built once (``db/prebuilt.py``): every proxied
file request runs the first, every cold fetch the second.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, bindparam, select
from sqlalchemy.engine import Dialect

from orchard.core import catalog
from orchard.core.artifacts import (
    CachedFile,
    add_cached_file,
    add_cached_file_blocking,
    prepare_cached_file,
)
from orchard.db.base import utcnow
from orchard.db.models import Artifact, CachedUrl
from orchard.db.prebuilt import Prebuilt
from orchard.storage.base import StagedBlob
from orchard.storage.filesystem import FilesystemStore
from orchard.upstream.context import UpstreamContext
from orchard.upstream.sources import without_userinfo


@dataclass(frozen=True)
class Placement:
    """Where a cached file goes in the proxy project."""

    format: str  # Package.format (and the cached URL's format)
    package: str
    version: str
    filename: str
    content_type: str = "application/octet-stream"


def url_hash(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()


_ARTIFACTS = cast(Table, Artifact.__table__)
_CACHED_URLS = cast(Table, CachedUrl.__table__)
_ARTIFACT_COLUMNS = ("id", "size", "md5", "sha1", "sha512", "content_type", "ref_count")
_LOOKUP = Prebuilt(
    select(*(_ARTIFACTS.c[name] for name in _ARTIFACT_COLUMNS))
    .join(_CACHED_URLS, _CACHED_URLS.c.artifact_id == _ARTIFACTS.c.id)
    .where(_CACHED_URLS.c.url_hash == bindparam("url_hash"))
)


@functools.cache
def _remember_url(dialect: str) -> Prebuilt:
    ins = catalog.dialect_insert(dialect)
    c = _CACHED_URLS.c
    stmt = ins(_CACHED_URLS).values(
        url_hash=bindparam("url_hash"),
        url=bindparam("url"),
        artifact_id=bindparam("artifact_id"),
        format=bindparam("format"),
        fetched_at=bindparam("now", type_=c.fetched_at.type),
    )
    return Prebuilt(
        stmt.on_conflict_do_update(
            index_elements=["url_hash"],
            set_={"artifact_id": stmt.excluded.artifact_id, "fetched_at": stmt.excluded.fetched_at},
        ),
        _CACHED_URLS,
    )


def prepare(dialect: Dialect) -> None:
    """Build and compile the statements of a cold fetch at start-up (about
    20 ms that the first proxied file would otherwise wait for)."""
    _LOOKUP.prepare(dialect)
    _remember_url(dialect.name).prepare(dialect)
    prepare_cached_file(dialect)


async def cached_artifact(ctx: UpstreamContext, url: str) -> Artifact | None:
    """The artifact stored for ``url`` (a transient object without
    timestamps: one prebuilt query)."""
    rows = await ctx.db.read_rows(_LOOKUP, {"url_hash": url_hash(url)})
    if not rows:
        return None
    return Artifact(**dict(zip(_ARTIFACT_COLUMNS, rows[0], strict=True)))


async def store_cached_file(
    ctx: UpstreamContext, url: str, place: Placement, staged: StagedBlob
) -> Artifact:
    """Record ``staged`` (verified) as ``place`` in the proxy project, and
    ``url`` as fetched."""
    project = catalog.PROXY_PROJECT
    remember = {
        "url_hash": url_hash(url),
        "url": without_userinfo(url),  # a pip.conf URL may carry a token: not kept
        "artifact_id": staged.info.sha256,
        "format": place.format,
        "now": utcnow(),
    }
    try:
        project_id = ctx.project_ids.get(project)
        storage = ctx.storage
        if (
            project_id is not None
            and ctx.db.blocking_writes
            and isinstance(storage, FilesystemStore)
        ):  # the embedded default: one thread hop for the whole transaction
            cached = _cached_file(place, project_id, remember, ctx.db.dialect)
            stored = await ctx.db.write_blocking(
                lambda run: add_cached_file_blocking(run, storage, cached, staged)
            )
        else:
            async with ctx.db.transaction() as session:
                if project_id is None:
                    project_id = (await catalog.get_project(session, project)).id
                dialect = session.get_bind().dialect.name
                cached = _cached_file(place, project_id, remember, dialect)
                stored = await add_cached_file(session, storage, cached, staged)
    except BaseException:
        ctx.project_ids.pop(project, None)  # e.g. a database replaced under us
        raise
    ctx.project_ids[project] = project_id
    return stored.artifact


def _cached_file(
    place: Placement, project_id: int, remember: dict[str, Any], dialect: str
) -> CachedFile:
    return CachedFile(
        project_id=project_id,
        project_name=catalog.PROXY_PROJECT,
        package_name=place.package,
        version=place.version,
        filename=place.filename,
        package_format=place.format,
        content_type=place.content_type,
        also=((_remember_url(dialect), remember),),
    )
