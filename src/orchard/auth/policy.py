"""Who may do what with a project.

A principal's level in a project is the highest of: read if the project is
public; the member role; admin for system administrators. A read-scoped
token caps it at read; a token restricted to some projects is anonymous
everywhere else. Level 0 means the project does not exist for this
principal: it is answered with 404, never 403, so that private projects
cannot be discovered.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from orchard.auth.principal import Principal
from orchard.core.catalog import get_project
from orchard.db.models import Project, ProjectMember
from orchard.errors import Forbidden, NotFound, Unauthorized

ROLES = {"read": 1, "write": 2, "admin": 3}


def _in_token_reach(principal: Principal, project: Project) -> bool:
    return principal.token_projects is None or project.name in principal.token_projects


async def level(session: AsyncSession, principal: Principal, project: Project) -> int:
    public = 1 if project.is_public else 0
    if principal.user_id is None or not _in_token_reach(principal, project):
        return public
    if principal.is_admin:
        result = 3
    else:
        role = await session.scalar(
            select(ProjectMember.role).where(
                ProjectMember.project_id == project.id,
                ProjectMember.user_id == principal.user_id,
            )
        )
        result = max(public, ROLES.get(role or "", 0))
    if principal.scope == "read":
        result = min(result, 1)
    return result


async def authorize(
    session: AsyncSession, principal: Principal, project: Project, need: str
) -> None:
    """Raise NotFound (invisible), Unauthorized (sign in) or Forbidden."""
    have = await level(session, principal, project)
    if have == 0:
        raise NotFound(f"project {project.name!r} not found")
    if have < ROLES[need]:
        if not principal.authenticated:
            raise Unauthorized(f"sign in to {need} project {project.name!r}")
        if principal.scope == "read" and ROLES[need] > 1:
            raise Forbidden("this token is read-only")
        raise Forbidden(f"you may not {need} project {project.name!r}")


def visible_projects(principal: Principal) -> ColumnElement[bool]:
    """A WHERE clause selecting the projects ``principal`` may read."""
    if principal.user_id is None:
        return Project.is_public == true()
    member_of = select(ProjectMember.project_id).where(ProjectMember.user_id == principal.user_id)
    reach: ColumnElement[bool] = true()
    if principal.token_projects is not None:
        reach = Project.name.in_(sorted(principal.token_projects))
    own: ColumnElement[bool] = true() if principal.is_admin else Project.id.in_(member_of)
    return or_(Project.is_public == true(), and_(reach, own))


def require_admin(principal: Principal) -> None:
    if not principal.authenticated:
        raise Unauthorized("sign in as an administrator")
    if not principal.is_admin or principal.token_projects is not None:
        raise Forbidden("administrators only")


def require_user(principal: Principal) -> None:
    if not principal.authenticated:
        raise Unauthorized("sign in first")


def require_write_scope(principal: Principal) -> None:
    if principal.scope != "write":
        raise Forbidden("this token is read-only")


async def project_for(session: AsyncSession, principal: Principal, name: str, need: str) -> Project:
    """The named project, if ``principal`` may ``need`` (read/write/admin) it."""
    project = await get_project(session, name)
    await authorize(session, principal, project, need)
    return project
