"""/api/v1/projects and /api/v1/project/{project}."""

from __future__ import annotations

from fastapi import APIRouter, Query, Response

from orchard.api.schemas import ProjectIn, ProjectOut, ProjectPatch
from orchard.auth.policy import project_for, require_user, require_write_scope, visible_projects
from orchard.core import catalog
from orchard.db.base import utcnow
from orchard.db.models import ProjectMember
from orchard.deps import CurrentPrincipal, DbDep
from orchard.errors import Forbidden

router = APIRouter(tags=["projects"])


@router.get("/projects", response_model=list[ProjectOut])
async def list_projects(
    db: DbDep,
    principal: CurrentPrincipal,
    q: str | None = Query(None, max_length=100, description="substring of the name"),
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=2**31 - 1),
) -> list[ProjectOut]:
    """The projects you may read (private ones you are not a member of are
    not listed)."""
    async with db.session() as session:
        projects = await catalog.list_projects(
            session, q, limit, offset, visible=visible_projects(principal)
        )
        return [ProjectOut.model_validate(p) for p in projects]


@router.post("/projects", response_model=ProjectOut, status_code=201)
async def create_project(body: ProjectIn, db: DbDep, principal: CurrentPrincipal) -> ProjectOut:
    """Create a project; you become its admin."""
    require_user(principal)
    require_write_scope(principal)
    if principal.token_projects is not None:
        raise Forbidden("a project-restricted token cannot create projects")
    async with db.transaction() as session:
        project = await catalog.create_project(
            session,
            principal.actor,
            body.name,
            body.description,
            body.is_public,
            body.upstream,
            visible=visible_projects(principal),
        )
        session.add(
            ProjectMember(
                project_id=project.id, user_id=principal.user_id, role="admin", created_at=utcnow()
            )
        )
        await session.flush()
        return ProjectOut.model_validate(project)


@router.get("/project/{project}", response_model=ProjectOut)
async def get_project(project: str, db: DbDep, principal: CurrentPrincipal) -> ProjectOut:
    async with db.session() as session:
        return ProjectOut.model_validate(await project_for(session, principal, project, "read"))


@router.patch("/project/{project}", response_model=ProjectOut)
async def update_project(
    project: str, body: ProjectPatch, db: DbDep, principal: CurrentPrincipal
) -> ProjectOut:
    """Change description, visibility or the upstream setting (project admins)."""
    async with db.transaction() as session:
        row = await project_for(session, principal, project, "admin")
        row = await catalog.update_project(
            session, principal.actor, row, body.model_dump(exclude_unset=True)
        )
        return ProjectOut.model_validate(row)


@router.delete("/project/{project}", status_code=204)
async def delete_project(project: str, db: DbDep, principal: CurrentPrincipal) -> Response:
    """Delete a project with all its packages, versions and files (project admins)."""
    async with db.transaction() as session:
        row = await project_for(session, principal, project, "admin")
        await catalog.delete_project(session, principal.actor, row)
    return Response(status_code=204)
