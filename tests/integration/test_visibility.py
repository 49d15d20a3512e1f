"""Private projects stay private; tokens stay secret and die at once."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx
from fastapi import FastAPI

from orchard.settings import Settings
from tests.conftest import ADMIN_PASSWORD, start_live_server
from tests.support import PASSWORD, add_member, basic, bearer, make_project, make_token, make_user

SECRET_BYTES = b"the crown jewels"
SECRET_SHA = hashlib.sha256(SECRET_BYTES).hexdigest()
FILE = "/api/v1/project/{p}/packages/hidden-pkg/versions/1.0/files/jewels.bin"


async def _private_world(app: FastAPI, client: httpx.AsyncClient) -> None:
    await make_project(app, "secret", public=False)
    r = await client.put(FILE.format(p="secret"), content=SECRET_BYTES)
    assert r.status_code == 201
    await make_user(app, "insider")
    await add_member(app, "secret", "insider", "read")
    await make_user(app, "outsider")


async def test_private_project_is_invisible_to_outsiders(
    app: FastAPI, client: httpx.AsyncClient, anon_client: httpx.AsyncClient
) -> None:
    await _private_world(app, client)
    outsider = bearer(await make_token(app, "outsider"))
    insider = bearer(await make_token(app, "insider"))
    for who in ({}, outsider):
        projects = (await anon_client.get("/api/v1/projects", headers=who)).json()
        assert "secret" not in [p["name"] for p in projects]
        hits = (await anon_client.get("/api/v1/search", params={"q": "hidden"},
                                      headers=who)).json()
        assert hits == []
        for url in ("/api/v1/project/secret", "/api/v1/project/secret/packages",
                    "/api/v1/project/secret/members", FILE.format(p="secret"),
                    f"/api/v1/artifacts/{SECRET_SHA}", f"/api/v1/artifacts/{SECRET_SHA}/content"):
            r = await anon_client.get(url, headers=who)
            assert r.status_code == 404, (url, r.status_code)
            assert "jewels" not in r.text and SECRET_BYTES.decode() not in r.text
        # Indistinguishable from a project that does not exist.
        ghost = await anon_client.get("/api/v1/project/no-such-project", headers=who)
        mine = await anon_client.get("/api/v1/project/secret", headers=who)
        assert ghost.json()["error"]["code"] == mine.json()["error"]["code"] == "not_found"
    # The member sees it all.
    assert (await anon_client.get(FILE.format(p="secret"), headers=insider)).content == SECRET_BYTES
    hits = (await anon_client.get("/api/v1/search", params={"q": "hidden"},
                                  headers=insider)).json()
    assert [h["project"] for h in hits] == ["secret"]


async def test_shared_artifact_shows_only_visible_references(
    app: FastAPI, client: httpx.AsyncClient, anon_client: httpx.AsyncClient
) -> None:
    await _private_world(app, client)
    await make_project(app, "open")
    assert (await client.put(FILE.format(p="open"), content=SECRET_BYTES)).status_code == 201
    detail = (await anon_client.get(f"/api/v1/artifacts/{SECRET_SHA}")).json()
    assert [r["project"] for r in detail["references"]] == ["open"]


async def test_public_project_reads_for_all_writes_for_members(
    app: FastAPI, client: httpx.AsyncClient, anon_client: httpx.AsyncClient
) -> None:
    await make_project(app, "community")
    assert (await client.put(FILE.format(p="community"), content=b"v1")).status_code == 201
    await make_user(app, "visitor")
    await make_user(app, "member")
    await add_member(app, "community", "member", "read")
    assert (await anon_client.get(FILE.format(p="community"))).content == b"v1"
    url = "/api/v1/project/community/packages/hidden-pkg/versions/2.0/files/x.bin"
    anon = await anon_client.put(url, content=b"x")
    assert anon.status_code == 401
    assert anon.headers["www-authenticate"].startswith("Basic")
    visitor = await anon_client.put(url, content=b"x",
                                    headers=bearer(await make_token(app, "visitor")))
    assert visitor.status_code == 403
    reader = await anon_client.put(url, content=b"x",
                                   headers=bearer(await make_token(app, "member")))
    assert reader.status_code == 403
    assert (await client.get("/api/v1/project/community/packages/hidden-pkg/versions")).json()[
        0]["version"] == "1.0"


async def test_read_token_cannot_write_and_restricted_token_stays_home(
    app: FastAPI, anon_client: httpx.AsyncClient
) -> None:
    await make_user(app, "owner")
    for name, public in (("home", False), ("away", False), ("away-public", True)):
        await make_project(app, name, public=public)
        await add_member(app, name, "owner", "admin")
    reader = bearer(await make_token(app, "owner", scope="read"))
    homebound = bearer(await make_token(app, "owner", projects=["home"]))
    put = "/api/v1/project/{p}/packages/k/versions/1/files/a.bin"
    assert (await anon_client.put(put.format(p="home"), content=b"a",
                                  headers=reader)).status_code == 403
    assert (await anon_client.get("/api/v1/project/home", headers=reader)).status_code == 200
    assert (await anon_client.put(put.format(p="home"), content=b"a",
                                  headers=homebound)).status_code == 201
    # Outside its project the token is nobody: private projects vanish, public
    # ones are read-only.
    assert (await anon_client.put(put.format(p="away"), content=b"a",
                                  headers=homebound)).status_code == 404
    assert (await anon_client.get("/api/v1/project/away", headers=homebound)).status_code == 404
    assert (await anon_client.put(put.format(p="away-public"), content=b"a",
                                  headers=homebound)).status_code == 403
    assert (await anon_client.post("/api/v1/projects", json={"name": "new"},
                                   headers=homebound)).status_code == 403


def test_revoked_token_fails_at_once_on_every_server(
    stack_settings: Settings, tmp_path: Path
) -> None:
    """Two server processes share one database; revoking on one is seen by the other."""
    first = start_live_server(stack_settings, tmp_path / "a.log")
    second = start_live_server(stack_settings, tmp_path / "b.log")
    try:
        admin = {"Authorization": f"Bearer {first.token}"}
        created = httpx.post(f"{first.url}/api/v1/tokens", json={"name": "ci", "scope": "read"},
                             headers=admin)
        assert created.status_code == 201, created.text
        token = created.json()["token"]
        for server in (first, second):
            assert httpx.get(f"{server.url}/api/v1/auth/me",
                             headers=bearer(token)).json()["username"] == "admin"
        revoked = httpx.delete(f"{first.url}/api/v1/tokens/{created.json()['id']}",
                               headers=admin)
        assert revoked.status_code == 204
        assert httpx.get(f"{second.url}/api/v1/auth/me",
                         headers=bearer(token)).status_code == 401
        assert httpx.get(f"{first.url}/api/v1/auth/me",
                         headers=basic("__token__", token)).status_code == 401
    finally:
        first.stop()
        second.stop()


def test_no_password_or_token_in_logs_or_responses(
    stack_settings: Settings, tmp_path: Path
) -> None:
    log = tmp_path / "server.log"
    server = start_live_server(stack_settings, log)
    bodies: list[str] = []
    wrong_password = "wrong-horse-battery"
    try:
        with httpx.Client(base_url=server.url) as http:
            admin = {"Authorization": f"Bearer {server.token}"}
            user = http.post("/api/v1/users", json={"username": "zed", "password": PASSWORD},
                             headers=admin)
            bodies.append(user.text)
            created = http.post("/api/v1/tokens", json={"name": "t", "scope": "write"},
                                headers=admin)
            token = created.json()["token"]  # the one response that may hold it
            for r in (
                http.post("/api/v1/auth/login",
                          json={"username": "zed", "password": wrong_password}),
                http.post("/api/v1/auth/login", json={"username": "zed", "password": PASSWORD}),
                http.post("/api/v1/auth/login",
                          json={"username": "admin", "password": ADMIN_PASSWORD}),
                http.get("/api/v1/auth/me", headers=basic("zed", PASSWORD)),
                http.get("/api/v1/auth/me", headers=basic("zed", wrong_password)),
                http.get("/api/v1/auth/me", headers=basic("__token__", token)),
                http.get("/api/v1/tokens", headers=bearer(token)),
                http.get("/api/v1/users/zed", headers=admin),
                http.get("/api/v1/audit", headers=admin),
                http.get("/health"),
            ):
                bodies.append(r.text + str(r.headers))
    finally:
        server.stop()
    logged = log.read_text()
    assert "created user 'admin'" in logged  # the log was captured at all
    for secret in (PASSWORD, wrong_password, ADMIN_PASSWORD, token, server.token):
        assert secret not in logged
        for body in bodies:
            assert secret not in body
