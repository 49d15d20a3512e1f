"""Every route of the OpenAPI document, walked with every kind of caller.

The table below says, for each route, which rule guards it; the rule says
the exact outcome for each caller. A route missing from the table fails the
test, so a new endpoint cannot ship unguarded.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from orchard.auth import tokens
from orchard.core import uploads
from orchard.core.audit import Actor
from orchard.db.base import utcnow
from orchard.db.models import UpstreamSource
from tests.support import (
    SETUP,
    add_member,
    bearer,
    make_project,
    make_token,
    make_user,
    revoke_all,
)

OK = "ok"
CALLERS = ("anon", "reader", "writer", "padmin", "other", "sysadmin", "readtok", "revoked",
           "expired")
DEAD = {"revoked": 401, "expired": 401}

RULES: dict[str, dict[str, int | str]] = {
    # The route ignores credentials entirely.
    "open": dict.fromkeys(CALLERS, OK),
    # Anyone; a bad credential is still refused.
    "public": {**dict.fromkeys(CALLERS, OK), **DEAD},
    # Reading the private project: invisible (404) to outsiders.
    "read": {"anon": 404, "reader": OK, "writer": OK, "padmin": OK, "other": 404,
             "sysadmin": OK, "readtok": OK, **DEAD},
    "write": {"anon": 404, "reader": 403, "writer": OK, "padmin": OK, "other": 404,
              "sysadmin": OK, "readtok": 403, **DEAD},
    "admin": {"anon": 404, "reader": 403, "writer": 403, "padmin": OK, "other": 404,
              "sysadmin": OK, "readtok": 403, **DEAD},
    # Any signed-in user.
    "user": {**dict.fromkeys(CALLERS, OK), "anon": 401, **DEAD},
    # Any signed-in user whose credential may write.
    "mint": {**dict.fromkeys(CALLERS, OK), "anon": 401, "readtok": 403, **DEAD},
    "sysadmin": {"anon": 401, "reader": 403, "writer": 403, "padmin": 403, "other": 403,
                 "sysadmin": OK, "readtok": 403, **DEAD},
    # A resumable upload exists only for the user who started it (writer);
    # their read-only token may look at it but not change it.
    "uploader-read": {**dict.fromkeys(CALLERS, 404), "writer": OK, "readtok": OK, **DEAD},
    "uploader": {**dict.fromkeys(CALLERS, 404), "writer": OK, "readtok": 403, **DEAD},
    # The writer's own token: the writer or an administrator; a read-only
    # token changes nothing, not even a token.
    "token-owner": {**dict.fromkeys(CALLERS, 404), "anon": 401, "writer": OK, "readtok": 403,
                    "sysadmin": OK, **DEAD},
    # Changing your password needs a password sign-in, not a token.
    "password": {**dict.fromkeys(CALLERS, 403), "anon": 401, **DEAD},
}

PKG = "/api/v1/project/{project}/packages/{package}"
TABLE: dict[tuple[str, str], str] = {
    ("GET", "/health"): "open",
    ("GET", "/api/v1/projects"): "public",
    ("POST", "/api/v1/projects"): "mint",
    ("GET", "/api/v1/project/{project}"): "read",
    ("PATCH", "/api/v1/project/{project}"): "admin",
    ("DELETE", "/api/v1/project/{project}"): "admin",
    ("GET", "/api/v1/project/{project}/packages"): "read",
    ("POST", "/api/v1/project/{project}/packages"): "write",
    ("GET", PKG): "read",
    ("DELETE", PKG): "write",
    ("GET", PKG + "/versions"): "read",
    ("GET", PKG + "/versions/{version}"): "read",
    ("PATCH", PKG + "/versions/{version}"): "write",
    ("DELETE", PKG + "/versions/{version}"): "write",
    ("PUT", PKG + "/versions/{version}/files/{filename}"): "write",
    ("GET", PKG + "/versions/{version}/files/{filename}"): "read",
    ("HEAD", PKG + "/versions/{version}/files/{filename}"): "read",
    ("POST", PKG + "/upload"): "write",
    ("GET", "/api/v1/artifacts/{sha256}"): "read",
    ("GET", "/api/v1/artifacts/{sha256}/content"): "read",
    ("HEAD", "/api/v1/artifacts/{sha256}/content"): "read",
    ("POST", "/api/v1/uploads"): "write",
    ("GET", "/api/v1/uploads/{upload_id}"): "uploader-read",
    ("HEAD", "/api/v1/uploads/{upload_id}"): "uploader-read",
    ("PATCH", "/api/v1/uploads/{upload_id}"): "uploader",
    ("POST", "/api/v1/uploads/{upload_id}/complete"): "uploader",
    ("DELETE", "/api/v1/uploads/{upload_id}"): "uploader",
    ("GET", "/api/v1/search"): "public",
    ("GET", "/api/v1/stats/storage"): "sysadmin",
    ("GET", "/api/v1/audit"): "sysadmin",
    ("POST", "/api/v1/auth/logout"): "public",
    ("GET", "/api/v1/auth/me"): "public",
    ("POST", "/api/v1/auth/password"): "password",
    ("GET", "/api/v1/users"): "sysadmin",
    ("POST", "/api/v1/users"): "sysadmin",
    ("GET", "/api/v1/users/{username}"): "sysadmin",
    ("PATCH", "/api/v1/users/{username}"): "sysadmin",
    ("GET", "/api/v1/tokens"): "user",
    ("POST", "/api/v1/tokens"): "mint",
    ("DELETE", "/api/v1/tokens/{token_id}"): "token-owner",
    ("GET", "/api/v1/project/{project}/members"): "read",
    ("PUT", "/api/v1/project/{project}/members/{username}"): "admin",
    ("DELETE", "/api/v1/project/{project}/members/{username}"): "admin",
    ("GET", "/api/v1/upstreams"): "sysadmin",
    ("POST", "/api/v1/upstreams"): "sysadmin",
    ("GET", "/api/v1/upstreams/{name}"): "sysadmin",
    ("PATCH", "/api/v1/upstreams/{name}"): "sysadmin",
    ("DELETE", "/api/v1/upstreams/{name}"): "sysadmin",
    ("POST", "/api/v1/upstreams/{name}/test"): "sysadmin",
}
# Routes the matrix does not walk, each with the test that covers it.
EXEMPT = {
    ("POST", "/api/v1/auth/login"): "the sign-in itself: test_auth.py",
}

FILE_BYTES = b"private bytes of the matrix"
SHA = hashlib.sha256(FILE_BYTES).hexdigest()


class World:
    """Users, tokens and a private project with one file, built once per test."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.auth: dict[str, dict[str, str]] = {}
        self.counter = itertools.count()

    async def build(self) -> None:
        for name in ("reader", "writer", "padmin", "other", "bystander"):
            await make_user(self.app, name)
        await make_project(self.app, "other-project", public=False)
        await add_member(self.app, "other-project", "other", "admin")
        self.auth = {
            "anon": {},
            "reader": bearer(await make_token(self.app, "reader")),
            "writer": bearer(await make_token(self.app, "writer")),
            "padmin": bearer(await make_token(self.app, "padmin")),
            "other": bearer(await make_token(self.app, "other")),
            "sysadmin": bearer(await make_token(self.app, "admin")),
            "readtok": bearer(await make_token(self.app, "writer", scope="read")),
            "expired": bearer(await make_token(self.app, "writer",
                                               expires_at=utcnow() - timedelta(seconds=5))),
        }
        # A token of a user whose tokens were all revoked.
        await make_user(self.app, "gone")
        self.auth["revoked"] = bearer(await make_token(self.app, "gone"))
        await revoke_all(self.app, "gone")

    async def private_project(self, client: httpx.AsyncClient) -> dict[str, str]:
        """A fresh private project with members, a file, an upload session and
        a token of the writer: the targets of one request."""
        n = next(self.counter)
        project = f"priv{n}"
        await make_project(self.app, project, public=False)
        for user, role in (("reader", "read"), ("writer", "write"), ("padmin", "admin"),
                           ("bystander", "read")):
            await add_member(self.app, project, user, role)
        url = f"/api/v1/project/{project}/packages/pkg/versions/1.0/files/f.bin"
        put = await client.put(url, content=FILE_BYTES, headers=self.auth["sysadmin"])
        assert put.status_code in (200, 201), put.text
        async with self.app.state.db.transaction() as session:
            writer = await _user(session, "writer")
            row = await uploads.create(
                session, Actor("writer", "", "cli"), project=project, package="pkg",
                version="3.0", filename="r.bin", size=None, ttl=3600, max_size=10**9,
            )
            token, _ = await tokens.create_token(session, SETUP, writer, f"victim{n}", "read")
            session.add(UpstreamSource(name=f"up{n}", format="pypi",
                                       url="http://127.0.0.1:9/simple"))
        return {"project": project, "package": "pkg", "version": "1.0", "filename": "f.bin",
                "sha256": SHA, "upload_id": row.id, "username": "bystander",
                "token_id": str(token.id), "n": str(n), "name": f"up{n}"}


async def _user(session: Any, name: str) -> Any:
    from orchard.auth.users import get_user

    return await get_user(session, name)


def request_for(method: str, path: str, ids: dict[str, str]) -> dict[str, Any]:
    """A request that passes validation, so the status says what auth decided."""
    url = path.format(**{k: v for k, v in ids.items() if "{" + k + "}" in path})
    n = ids["n"]
    kw: dict[str, Any] = {"method": method, "url": url}
    if path == "/api/v1/search":
        kw["params"] = {"q": "pkg"}
    bodies: dict[tuple[str, str], dict[str, Any]] = {
        ("POST", "/api/v1/projects"): {"json": {"name": f"new{n}"}},
        ("PATCH", "/api/v1/project/{project}"): {"json": {"description": "changed"}},
        ("POST", "/api/v1/project/{project}/packages"): {"json": {"name": f"pk{n}"}},
        ("PATCH", PKG + "/versions/{version}"): {"json": {"yanked": True}},
        ("PUT", PKG + "/versions/{version}/files/{filename}"): {"content": b"new"},
        ("POST", PKG + "/upload"): {"files": {"file": ("u.bin", b"x")},
                                    "data": {"version": "2.0"}},
        ("POST", "/api/v1/uploads"): {"json": {"project": ids["project"], "package": "pkg",
                                               "version": "4.0", "filename": "s.bin"}},
        ("PATCH", "/api/v1/uploads/{upload_id}"): {"content": b"abc",
                                                   "headers": {"Upload-Offset": "0"}},
        ("POST", "/api/v1/uploads/{upload_id}/complete"): {
            "json": {"sha256": hashlib.sha256(b"").hexdigest()}},
        ("POST", "/api/v1/auth/password"): {"json": {"current_password": "whatever-123",
                                                     "new_password": "another-pass-123"}},
        ("POST", "/api/v1/users"): {"json": {"username": f"u{n}",
                                             "password": "a-long-password"}},
        ("PATCH", "/api/v1/users/{username}"): {"json": {"disabled": False}},
        ("POST", "/api/v1/tokens"): {"json": {"name": "matrix", "scope": "read"}},
        ("PUT", "/api/v1/project/{project}/members/{username}"): {"json": {"role": "write"}},
        ("POST", "/api/v1/upstreams"): {"json": {"name": f"new-up{n}", "format": "pypi",
                                                 "url": "http://127.0.0.1:9/simple"}},
        ("PATCH", "/api/v1/upstreams/{name}"): {"json": {"priority": 3}},
    }
    if method == "PUT" and path.endswith("{filename}"):
        kw["url"] = url.replace("/1.0/files/f.bin", f"/9.{n}/files/new.bin")
    kw.update(bodies.get((method, path), {}))
    return kw


def outcome(status: int) -> int | str:
    if status in (401, 403, 404):
        return status
    assert status < 500, f"server error {status}"
    return OK


@pytest.fixture
async def world(app: FastAPI) -> AsyncIterator[World]:
    w = World(app)
    await w.build()
    yield w


def _routes(app: FastAPI) -> list[tuple[str, str]]:
    routes = []
    for path, item in app.openapi()["paths"].items():
        for method in item:
            routes.append((method.upper(), path))
    return sorted(routes)


async def test_every_route_is_in_the_table(app: FastAPI) -> None:
    routes = set(_routes(app))
    missing = routes - set(TABLE) - set(EXEMPT)
    assert not missing, f"routes without an authorization rule: {sorted(missing)}"
    stale = set(TABLE) - routes
    assert not stale, f"table rows for routes that no longer exist: {sorted(stale)}"


async def test_permission_matrix(
    app: FastAPI, anon_client: httpx.AsyncClient, client: httpx.AsyncClient, world: World
) -> None:
    failures = []
    shared = await world.private_project(client)
    for method, path in _routes(app):
        if (method, path) in EXEMPT:
            continue
        rule = RULES[TABLE[(method, path)]]
        mutating = method not in ("GET", "HEAD")
        for caller in CALLERS:
            ids = await world.private_project(client) if mutating else shared
            kw = request_for(method, path, ids)
            headers = {**kw.pop("headers", {}), **world.auth[caller]}
            response = await anon_client.request(headers=headers, **kw)
            got = outcome(response.status_code)
            if got != rule[caller]:
                failures.append(f"{method} {path} as {caller}: expected {rule[caller]}, "
                                f"got {response.status_code} {response.text[:120]}")
    assert not failures, "\n".join(failures)
