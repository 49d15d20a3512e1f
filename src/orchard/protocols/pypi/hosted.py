"""Hosted packages: simple-API pages built from the database.

A hosted Python package is a Package of format ``pypi`` (normalised name).
Each distribution is a File of its version; its PEP 658 sidecar is a second
File of the same version named ``{filename}.metadata``, pointing at an
artifact that holds the exact METADATA bytes. So the sidecar is a
content-addressed artifact like any other (deduplicated, counted by the
ref_count triggers, kept by gc, cascaded by deletes), and a page advertises
``core-metadata`` only when that File row exists, in the same query, so it
never advertises a sidecar it cannot serve.

Per-file facts that are not in the File row (``Requires-Python``) live in
``Version.meta["pypi_files"][filename]``. Yank state is read live from the
Version, so a REST yank shows on the next page request.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from orchard.db.models import Artifact, File, Package, Project, Version
from orchard.protocols.pypi import names
from orchard.protocols.pypi.model import DistFile, ProjectPage

FORMAT = "pypi"
SIDECAR_SUFFIX = ".metadata"
META_KEY = "pypi_files"


def file_path(project: str, package: str, version: str, filename: str) -> str:
    """The path of a hosted file (its sidecar: the same + ``.metadata``)."""
    q = [quote(p, safe="") for p in (project, package, version, filename)]
    return f"/pypi/{q[0]}/files/{q[1]}/{q[2]}/{q[3]}"


async def hosted_package(session: AsyncSession, project: Project, name: str) -> Package | None:
    """The project's pypi package of normalised ``name``, if hosted."""
    package: Package | None = await session.scalar(
        select(Package).where(
            Package.project_id == project.id, Package.name == name, Package.format == FORMAT
        )
    )
    return package


async def hosted_names(session: AsyncSession, project: Project) -> list[str]:
    """Display names of the project's hosted Python packages."""
    stmt = select(Package.display_name).where(
        Package.project_id == project.id, Package.format == FORMAT
    )
    return list(await session.scalars(stmt))


def file_meta(version: Version, filename: str) -> dict[str, Any]:
    entry = (version.meta or {}).get(META_KEY, {}).get(filename, {})
    return entry if isinstance(entry, dict) else {}


async def hosted_page(
    session: AsyncSession, project: Project, package: Package, base_url: str
) -> ProjectPage:
    """The page of a hosted package; file URLs are absolute under ``base_url``."""
    stmt = (
        select(Version, File.filename, File.created_at, Artifact.id, Artifact.size)
        .join(File, File.version_id == Version.id)
        .join(Artifact, Artifact.id == File.artifact_id)
        .where(Version.package_id == package.id)
        .order_by(Version.id, File.filename)
    )
    rows = (await session.execute(stmt)).all()
    sidecars = {
        (version.id, filename.removesuffix(SIDECAR_SUFFIX)): sha256
        for version, filename, _at, sha256, _size in rows
        if filename.endswith(SIDECAR_SUFFIX)
    }
    page = ProjectPage(name=package.display_name)
    for version, filename, created_at, sha256, size in rows:
        dist = names.try_parse_filename(filename)
        if dist is None:  # a sidecar, or a non-distribution file uploaded over REST
            continue
        sidecar = sidecars.get((version.id, filename))
        page.files.append(
            DistFile(
                filename=filename,
                url=base_url + file_path(project.name, package.name, version.version, filename),
                version=version.version,
                hashes={"sha256": sha256},
                size=size,
                requires_python=file_meta(version, filename).get("requires_python") or None,
                yanked=(version.yank_reason or True) if version.yanked else False,
                upload_time=created_at,
                core_metadata={"sha256": sidecar} if sidecar else None,
            )
        )
        if version.version not in page.versions:
            page.versions.append(version.version)
    return page
