"""The PyPI caching proxy (upstream indexes and files).

``upstream_page`` answers the service with the merged upstream page of a
name, every file URL rewritten to ``/pypi/{project}/upstream/{name}/{filename}``.
``upstream_file`` serves those URLs: the filename is looked up on the
(cached) page of ``name``, so only files that a configured upstream listed
can ever be fetched (no open proxy); an unlisted filename forces one refresh
of the page. Files and their PEP 658 sidecars (only when the upstream offers
one, verified against its hash) are cached in the ``proxy`` project on first
request (``upstream/files.py``) and served from storage afterwards; when no
page is available at all (upstream down, cache lost) a file already stored
in the proxy project is still served.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

from packaging.utils import canonicalize_name
from sqlalchemy.ext.asyncio import AsyncSession

from orchard.core import names as core_names
from orchard.db.models import Project
from orchard.errors import InvalidInput, NotFound, UpstreamError
from orchard.protocols.pypi import metadata, proxy_stored
from orchard.protocols.pypi import proxy_index as index
from orchard.protocols.pypi.hosted import FORMAT
from orchard.protocols.pypi.model import DistFile, ProjectPage
from orchard.protocols.pypi.names import canonical_version, try_parse_filename
from orchard.protocols.pypi.render import sorted_versions
from orchard.protocols.pypi.upstream import UpstreamFile
from orchard.upstream.context import UpstreamContext
from orchard.upstream.digests import HexDigests
from orchard.upstream.files import AfterStore, Found, Inspect, Wanted, fetch_once
from orchard.upstream.sources import Source
from orchard.upstream.stored import Placement

log = logging.getLogger("orchard.upstream")

SIDECAR = ".metadata"
_LEGACY_SUFFIXES = (".tar.gz", ".tar.bz2", ".tar.xz", ".tgz", ".tar", ".zip", ".egg", ".exe")


def version_of(name: str, filename: str) -> str:
    """The version a distribution filename carries ("unknown" if none)."""
    dist = try_parse_filename(filename)
    if dist is not None:
        return dist.version
    stem = filename
    for suffix in _LEGACY_SUFFIXES:
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    parts = stem.split("-")
    for i in range(1, len(parts)):
        if canonicalize_name("-".join(parts[:i])) == name:
            try:
                return canonical_version(parts[i])
            except InvalidInput:
                break
    return "unknown"


def _upload_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _file_url(base: str, project: str, name: str, filename: str) -> str:
    q = [quote(p, safe="") for p in (project, name, filename)]
    return f"{base}/pypi/{q[0]}/upstream/{q[1]}/{q[2]}"


def _dist_file(base: str, project: str, name: str, f: UpstreamFile) -> DistFile:
    return DistFile(
        filename=f.filename,
        url=_file_url(base, project, name, f.filename),
        version=version_of(name, f.filename),
        hashes=dict(f.hashes),
        size=f.size,
        requires_python=f.requires_python,
        yanked=f.yanked,
        upload_time=_upload_time(f.upload_time),
        core_metadata=dict(f.core_metadata) if f.core_metadata is not None else None,
    )


async def upstream_page(
    ctx: UpstreamContext, project: Project, name: str, base: str
) -> ProjectPage | None:
    """The merged upstream page for normalised ``name`` with every file URL
    rewritten to an Orchard URL under ``{base}/pypi/{project}/``, or None when
    no upstream has it (or upstreams are off / ORCHARD_OFFLINE with nothing cached)."""
    try:
        merged = await index.load(ctx, name)
    except UpstreamError:
        page = await _stored_page(base, ctx, project.name, name)
        if page is None:
            raise
        return page
    if merged is None:
        if ctx.settings.offline:  # offline without a cached page: the stored files
            return await _stored_page(base, ctx, project.name, name)
        return None
    files = [_dist_file(base, project.name, name, f) for _source, f in merged.files]
    versions = sorted_versions({f.version for f in files})
    return ProjectPage(name=name, files=files, versions=versions, stale=merged.stale)


async def _stored_page(
    base: str, ctx: UpstreamContext, project: str, name: str
) -> ProjectPage | None:
    """A stale page of the files already cached (no upstream page available)."""
    rows = await proxy_stored.stored_files(ctx, name)
    sidecars = {f: a.id for _v, f, a in rows if f.endswith(SIDECAR)}
    files = [
        DistFile(
            filename=filename,
            url=_file_url(base, project, name, filename),
            version=version,
            hashes={"sha256": artifact.id},
            size=artifact.size,
            core_metadata=(
                {"sha256": sidecars[filename + SIDECAR]} if filename + SIDECAR in sidecars else None
            ),
        )
        for version, filename, artifact in rows
        if not filename.endswith(SIDECAR)
    ]
    if not files:
        return None
    log.warning("serving %s from stored files only", name, extra={"event": "upstream_stale"})
    versions = sorted_versions({f.version for f in files})
    return ProjectPage(name=name, files=files, versions=versions, stale=True)


async def _listed(
    ctx: UpstreamContext, name: str, filename: str
) -> tuple[Source, UpstreamFile] | None:
    """The page entry of ``filename``; an unlisted file forces a refresh, at
    most one per page per ``index.UNLISTED_RETRY`` seconds."""
    try:
        merged = await index.load(ctx, name)
        found = merged.find(filename) if merged else None
        if found is None and not ctx.settings.offline and await index.may_force(ctx, name):
            merged = await index.load(ctx, name, force=True)
            found = merged.find(filename) if merged else None
    except UpstreamError:
        return None  # no page at all: the stored copy may still serve
    return found


def _dependencies(filename: str) -> Inspect | None:
    if try_parse_filename(filename) is None:
        return None

    async def inspect(path: Path) -> AfterStore | None:
        try:
            core = await metadata.extract_metadata(path, filename)
        except InvalidInput as exc:
            log.info("no dependencies from %s: %s", filename, exc.message)
            return None

        async def record(session: AsyncSession, artifact_id: str) -> None:
            await metadata.store_dependencies(session, artifact_id, core.requires_dist)

        return record

    return inspect


async def upstream_file(
    ctx: UpstreamContext, project: Project, path: str, *, stream: bool
) -> Found | None:
    """A proxied file (or its ``.metadata`` sidecar) from the URL space that
    ``upstream_page`` rewrote links into; None if ``path`` is not one."""
    parts = path.strip("/").split("/")
    if len(parts) != 3 or parts[0] != "upstream" or not project.upstream:
        return None
    _, name, filename = parts
    if canonicalize_name(name) != name:
        raise NotFound(f"{name!r} is not a normalised project name")
    core_names.filename(filename)
    sidecar = filename.endswith(SIDECAR)
    dist = filename.removesuffix(SIDECAR) if sidecar else filename
    found = await _listed(ctx, name, dist)
    if found is None:
        stored = await proxy_stored.stored_file(ctx, name, filename)
        if stored is not None:
            return Found(filename, stored)
        raise NotFound(f"{filename} is not a file of {name!r} on any upstream")
    source, f = found
    if not source.rule.allows_link(f.url):  # a page cached before the rule (or the hosts) changed
        raise NotFound(f"{filename} is not a file of {name!r} on any upstream")
    if sidecar:
        if f.core_metadata is None:
            raise NotFound(f"the upstream offers no metadata file for {dist}")
        url, hashes = f.url + SIDECAR, f.core_metadata
    else:
        url, hashes = f.url, f.hashes
    wanted = Wanted(url, HexDigests(hashes), ctx.headers_for(source, url), source.rule)
    place = Placement(FORMAT, name, version_of(name, dist), filename)
    inspect = None if sidecar else _dependencies(filename)
    got = await fetch_once(ctx, wanted, place, stream=stream, inspect=inspect)
    return Found(filename, got)
