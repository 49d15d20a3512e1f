"""Helpers that set up users, tokens and members straight in the database."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from orchard.auth import tokens, users
from orchard.core import catalog
from orchard.core.audit import Actor
from orchard.db.base import utcnow
from orchard.db.models import ProjectMember

SETUP = Actor(name="test-setup", credential="cli")
PASSWORD = "user-password-123"


async def make_user(app: Any, name: str, *, admin: bool = False,
                    password: str = PASSWORD) -> None:
    async with app.state.db.transaction() as session:
        await users.create_user(session, SETUP, name, password, is_admin=admin)


async def make_token(app: Any, username: str, *, scope: str = "write",
                     projects: list[str] | None = None,
                     expires_at: datetime | None = None) -> str:
    async with app.state.db.transaction() as session:
        user = await users.get_user(session, username)
        row, secret = await tokens.create_token(session, SETUP, user, f"t-{utcnow().timestamp()}",
                                                scope, projects=projects)
        if expires_at is not None:
            row.expires_at = expires_at  # allow the past, for expiry tests
        return secret


async def revoke_all(app: Any, username: str) -> None:
    async with app.state.db.transaction() as session:
        user = await users.get_user(session, username)
        for row in await tokens.list_tokens(session, user):
            await tokens.revoke(session, SETUP, row)


async def add_member(app: Any, project: str, username: str, role: str) -> None:
    async with app.state.db.transaction() as session:
        p = await catalog.get_project(session, project)
        u = await users.get_user(session, username)
        session.add(ProjectMember(project_id=p.id, user_id=u.id, role=role, created_at=utcnow()))


async def make_project(app: Any, name: str, *, public: bool = True) -> None:
    async with app.state.db.transaction() as session:
        await catalog.create_project(session, SETUP, name, is_public=public)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def basic(user: str, password: str) -> dict[str, str]:
    raw = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}
