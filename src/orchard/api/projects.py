"""/api/v1/projects and /api/v1/project/{project}."""

from __future__ import annotations

from fastapi import APIRouter, Query, Response

from orchard.api.schemas import ProjectIn, ProjectOut, ProjectPatch
from orchard.core import catalog
from orchard.deps import CurrentActor, DbDep

router = APIRouter(tags=["projects"])


@router.get("/projects", response_model=list[ProjectOut])
async def list_projects(
    db: DbDep,
    q: str | None = Query(None, max_length=100, description="substring of the name"),
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0),
) -> list[ProjectOut]:
    async with db.session() as session:
        projects = await catalog.list_projects(session, q, limit, offset)
        return [ProjectOut.model_validate(p) for p in projects]


@router.post("/projects", response_model=ProjectOut, status_code=201)
async def create_project(body: ProjectIn, db: DbDep, actor: CurrentActor) -> ProjectOut:
    async with db.transaction() as session:
        project = await catalog.create_project(
            session, actor, body.name, body.description, body.is_public, body.upstream
        )
        return ProjectOut.model_validate(project)


@router.get("/project/{project}", response_model=ProjectOut)
async def get_project(project: str, db: DbDep) -> ProjectOut:
    async with db.session() as session:
        return ProjectOut.model_validate(await catalog.get_project(session, project))


@router.patch("/project/{project}", response_model=ProjectOut)
async def update_project(
    project: str, body: ProjectPatch, db: DbDep, actor: CurrentActor
) -> ProjectOut:
    async with db.transaction() as session:
        row = await catalog.get_project(session, project)
        row = await catalog.update_project(
            session, actor, row, body.model_dump(exclude_unset=True)
        )
        return ProjectOut.model_validate(row)


@router.delete("/project/{project}", status_code=204)
async def delete_project(project: str, db: DbDep, actor: CurrentActor) -> Response:
    async with db.transaction() as session:
        row = await catalog.get_project(session, project)
        await catalog.delete_project(session, actor, row)
    return Response(status_code=204)
