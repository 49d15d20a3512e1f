"""The last resort of the proxy: what is stored in the ``proxy`` project.

When no upstream page is available at all (every upstream failing and the
cached page gone: a restart with the in-process cache, a flushed Redis) or
when offline without a cached page, the files already cached still make a
page: their sha256, size and PEP 658 sidecar (when one was cached) come from
the stored artifacts. Such a page is always marked stale.
"""

from __future__ import annotations

from sqlalchemy import select

from orchard.core import catalog
from orchard.db.models import Artifact, File, Package, Project, Version
from orchard.upstream.context import UpstreamContext

SIDECAR = ".metadata"


def _in_proxy(name: str) -> list[object]:
    return [
        Project.name == catalog.PROXY_PROJECT,
        Package.name == name,
        Package.format == "pypi",
    ]


async def stored_files(ctx: UpstreamContext, name: str) -> list[tuple[str, str, Artifact]]:
    """(version, filename, artifact) of every file cached for ``name``."""
    async with ctx.db.session() as session:
        rows = await session.execute(
            select(Version.version, File.filename, Artifact)
            .join(File, File.artifact_id == Artifact.id)
            .join(Version, File.version_id == Version.id)
            .join(Package, Version.package_id == Package.id)
            .join(Project, Package.project_id == Project.id)
            .where(*_in_proxy(name))  # type: ignore[arg-type]
            .order_by(Version.id, File.filename)
        )
        return [(v, f, a) for v, f, a in rows]


async def stored_file(ctx: UpstreamContext, name: str, filename: str) -> Artifact | None:
    """A file already cached in the proxy project under ``name``."""
    async with ctx.db.session() as session:
        artifact: Artifact | None = await session.scalar(
            select(Artifact)
            .join(File, File.artifact_id == Artifact.id)
            .join(Version, File.version_id == Version.id)
            .join(Package, Version.package_id == Package.id)
            .join(Project, Package.project_id == Project.id)
            .where(*_in_proxy(name), File.filename == filename)  # type: ignore[arg-type]
            .limit(1)
        )
        return artifact
