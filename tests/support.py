"""Helpers that set up users, tokens and members straight in the database."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

import httpx

from orchard.auth import tokens, users
from orchard.core import catalog
from orchard.core.audit import Actor
from orchard.db.base import utcnow
from orchard.db.models import ProjectMember
from orchard.upstream.context import upstream_context

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


class SettlingTransport(httpx.ASGITransport):
    """An in-process transport that returns once the app has also finished
    what it does right after answering: a proxied file is committed to the
    cache just after its (verified) bytes have been sent, and tests look there."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await super().handle_async_request(request)
        state = getattr(self.app, "state", None)
        if state is not None and getattr(state, "http", None) is not None:
            await upstream_context(self.app).files.settle()
        return response
