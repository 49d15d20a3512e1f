"""Project members and their roles: /api/v1/project/{project}/members."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field
from sqlalchemy import delete, select

from orchard.auth import users
from orchard.auth.policy import ROLES, authorize
from orchard.core import catalog
from orchard.core.audit import record
from orchard.db.base import utcnow
from orchard.db.models import ProjectMember, User
from orchard.deps import CurrentPrincipal, DbDep

router = APIRouter(tags=["members"])


class MemberIn(BaseModel):
    role: str = Field(pattern="^(read|write|admin)$")


class MemberOut(BaseModel):
    username: str
    role: str
    created_at: datetime


@router.get("/project/{project}/members", response_model=list[MemberOut])
async def list_members(project: str, db: DbDep, principal: CurrentPrincipal) -> list[MemberOut]:
    async with db.session() as session:
        row = await catalog.get_project(session, project)
        await authorize(session, principal, row, "read")
        result = await session.execute(
            select(User.username, ProjectMember.role, ProjectMember.created_at)
            .join(User, User.id == ProjectMember.user_id)
            .where(ProjectMember.project_id == row.id)
            .order_by(User.username)
        )
        return [MemberOut(username=u, role=r, created_at=c) for u, r, c in result]


@router.put("/project/{project}/members/{username}", response_model=MemberOut)
async def set_member(
    project: str, username: str, body: MemberIn, db: DbDep, principal: CurrentPrincipal
) -> MemberOut:
    """Add a member or change their role (project admins)."""
    assert body.role in ROLES
    async with db.transaction() as session:
        row = await catalog.get_project(session, project)
        await authorize(session, principal, row, "admin")
        catalog.ensure_writable(row)
        user = await users.get_user(session, username)
        member = await session.get(ProjectMember, (row.id, user.id))
        if member is None:
            member = ProjectMember(
                project_id=row.id, user_id=user.id, role=body.role, created_at=utcnow()
            )
            session.add(member)
        else:
            member.role = body.role
        record(
            session, principal.actor, "member.set", f"{row.name}/{user.username}", role=body.role
        )
        await session.flush()
        return MemberOut(username=user.username, role=member.role, created_at=member.created_at)


@router.delete("/project/{project}/members/{username}", status_code=204)
async def remove_member(
    project: str, username: str, db: DbDep, principal: CurrentPrincipal
) -> Response:
    async with db.transaction() as session:
        row = await catalog.get_project(session, project)
        await authorize(session, principal, row, "admin")
        user = await users.get_user(session, username)
        await session.execute(
            delete(ProjectMember).where(
                ProjectMember.project_id == row.id, ProjectMember.user_id == user.id
            )
        )
        record(session, principal.actor, "member.remove", f"{row.name}/{user.username}")
    return Response(status_code=204)
