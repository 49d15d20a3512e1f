"""Search packages by name, and storage statistics."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from sqlalchemy import func, select

from orchard.api.schemas import SearchHit, StorageStats
from orchard.api.urls import package_url
from orchard.auth.policy import require_admin, visible_projects
from orchard.core import names
from orchard.db.models import Artifact, File, Package, Project, Version
from orchard.deps import CurrentPrincipal, DbDep

router = APIRouter(tags=["search"])


@router.get("/search", response_model=list[SearchHit])
async def search(
    request: Request,
    db: DbDep,
    principal: CurrentPrincipal,
    q: str = Query(..., min_length=1, max_length=214, description="part of a package name"),
    format: str | None = Query(None, max_length=16),
    project: str | None = Query(None, max_length=100),
    limit: int = Query(50, ge=1, le=500),
) -> list[SearchHit]:
    names.query_term("search term", q)
    names.query_term("format", format)
    names.query_term("project", project)
    latest = (
        select(Version.version)
        .where(Version.package_id == Package.id)
        .order_by(Version.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    stmt = (
        select(
            Project.name,
            Package.display_name,
            Package.format,
            Package.description,
            latest,
            Package.name,
        )
        .join(Project, Package.project_id == Project.id)
        .where(visible_projects(principal))
        .where(func.lower(Package.name).contains(q.lower(), autoescape=True))
        .order_by(func.length(Package.name), Package.name, Project.name)
        .limit(limit)
    )
    if format:
        stmt = stmt.where(Package.format == format)
    if project:
        stmt = stmt.where(Project.name == project)
    async with db.session() as session:
        rows = await session.execute(stmt)
        return [
            SearchHit(
                project=r[0],
                package=r[1],
                format=r[2],
                description=r[3],
                latest_version=r[4],
                url=package_url(request, r[0], r[2], r[5]),
            )
            for r in rows
        ]


@router.get("/stats/storage", response_model=StorageStats)
async def storage_stats(db: DbDep, principal: CurrentPrincipal) -> StorageStats:
    """Storage used and saved by deduplication, over every project
    (administrators only: the saving would tell a writer that bytes it
    uploaded exist in a project it cannot read)."""
    require_admin(principal)
    async with db.session() as session:
        count, stored = (
            await session.execute(
                select(func.count(Artifact.id), func.coalesce(func.sum(Artifact.size), 0))
            )
        ).one()
        files, logical = (
            await session.execute(
                select(func.count(File.id), func.coalesce(func.sum(Artifact.size), 0)).join(
                    Artifact, File.artifact_id == Artifact.id
                )
            )
        ).one()
        unreferenced = await session.scalar(
            select(func.count(Artifact.id)).where(Artifact.ref_count == 0)
        )
    return StorageStats(
        artifacts=count,
        stored_bytes=int(stored),
        files=files,
        logical_bytes=int(logical),
        saved_bytes=max(0, int(logical) - int(stored)),
        unreferenced_artifacts=unreferenced or 0,
    )
