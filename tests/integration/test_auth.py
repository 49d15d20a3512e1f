"""Users, web sessions, CSRF, throttling and API tokens."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

import httpx
import pytest

from orchard.db.base import utcnow
from orchard.settings import Settings
from tests.conftest import ADMIN_PASSWORD, server_env
from tests.support import PASSWORD, basic, bearer, make_token, make_user

pytestmark = pytest.mark.usefixtures("app")


@pytest.fixture
def client(anon_client: httpx.AsyncClient) -> httpx.AsyncClient:
    """These tests bring their own credentials."""
    return anon_client


async def login(client: httpx.AsyncClient, user: str, password: str) -> httpx.Response:
    return await client.post("/api/v1/auth/login", json={"username": user, "password": password})


async def test_first_admin_must_change_password(client: httpx.AsyncClient) -> None:
    r = await login(client, "admin", ADMIN_PASSWORD)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["must_change_password"] is True and body["is_admin"] is True
    csrf = {"X-CSRF-Token": body["csrf_token"]}
    # Until the password changes, the session can do nothing else.
    blocked = await client.post("/api/v1/projects", json={"name": "x"}, headers=csrf)
    assert blocked.status_code == 403
    assert "password change required" in blocked.json()["error"]["message"]
    changed = await client.post(
        "/api/v1/auth/password",
        json={"current_password": ADMIN_PASSWORD, "new_password": "a-brand-new-password"},
        headers=csrf,
    )
    assert changed.status_code == 204
    # Changing the password ends the session; sign in again with the new one.
    assert (await client.get("/api/v1/auth/me")).json()["authenticated"] is False
    assert (await login(client, "admin", ADMIN_PASSWORD)).status_code == 401
    r = await login(client, "admin", "a-brand-new-password")
    assert r.json()["must_change_password"] is False
    ok = await client.post("/api/v1/projects", json={"name": "x"},
                           headers={"X-CSRF-Token": r.json()["csrf_token"]})
    assert ok.status_code == 201


async def test_session_cookie_is_httponly_samesite_and_signed(
    client: httpx.AsyncClient, app: object
) -> None:
    await make_user(app, "carol")
    r = await login(client, "carol", PASSWORD)
    cookies = r.headers.get_list("set-cookie")
    session_cookie = next(c for c in cookies if c.startswith("orchard_session="))
    assert "HttpOnly" in session_cookie and "SameSite=strict" in session_cookie
    assert (await client.get("/api/v1/auth/me")).json()["username"] == "carol"
    # A tampered cookie is not a session.
    value = client.cookies["orchard_session"]
    client.cookies.set("orchard_session", value[:-4] + "0000")
    assert (await client.get("/api/v1/auth/me")).json()["authenticated"] is False


async def test_csrf_is_required_for_cookie_writes(client: httpx.AsyncClient, app: object) -> None:
    await make_user(app, "dave")
    r = await login(client, "dave", PASSWORD)
    no_csrf = await client.post("/api/v1/projects", json={"name": "dp"})
    assert no_csrf.status_code == 403
    wrong = await client.post("/api/v1/projects", json={"name": "dp"},
                              headers={"X-CSRF-Token": "nope"})
    assert wrong.status_code == 403
    assert (await client.get("/api/v1/project/dp")).status_code == 404  # nothing changed
    good = await client.post("/api/v1/projects", json={"name": "dp"},
                             headers={"X-CSRF-Token": r.json()["csrf_token"]})
    assert good.status_code == 201


async def test_logout_ends_the_session(client: httpx.AsyncClient, app: object) -> None:
    await make_user(app, "erin")
    r = await login(client, "erin", PASSWORD)
    old_cookie = client.cookies["orchard_session"]
    out = await client.post("/api/v1/auth/logout",
                            headers={"X-CSRF-Token": r.json()["csrf_token"]})
    assert out.status_code == 204
    client.cookies.set("orchard_session", old_cookie)  # replaying the old cookie
    assert (await client.get("/api/v1/auth/me")).json()["authenticated"] is False


async def test_failed_logins_are_throttled_per_user_and_address(
    client: httpx.AsyncClient, app: object
) -> None:
    await make_user(app, "frank")
    codes = [(await login(client, "frank", "wrong-password")).status_code for _ in range(7)]
    assert codes[:5] == [401] * 5
    assert 429 in codes[5:]
    throttled = await login(client, "frank", PASSWORD)  # even the right password waits
    assert throttled.status_code == 429
    assert int(throttled.headers["retry-after"]) >= 1
    # Another user from the same address is slowed too (per-address counter).
    await make_user(app, "grace")
    assert (await login(client, "grace", PASSWORD)).status_code == 429


async def test_disabled_user_cannot_sign_in_or_use_tokens(
    client: httpx.AsyncClient, app: object
) -> None:
    await make_user(app, "root-admin", admin=True)
    await make_user(app, "henry")
    admin_token = await make_token(app, "root-admin")
    henry_token = await make_token(app, "henry", scope="read")
    assert (await client.get("/api/v1/auth/me", headers=bearer(henry_token))).status_code == 200
    r = await client.patch("/api/v1/users/henry", json={"disabled": True},
                           headers=bearer(admin_token))
    assert r.status_code == 200 and r.json()["disabled"] is True
    assert (await client.get("/api/v1/auth/me", headers=bearer(henry_token))).status_code == 401
    assert (await login(client, "henry", PASSWORD)).status_code == 401


async def test_tokens_shown_once_listed_and_revoked(client: httpx.AsyncClient, app: object) -> None:
    await make_user(app, "ivy")
    boot = await make_token(app, "ivy")
    created = await client.post("/api/v1/tokens", json={"name": "ci", "scope": "read"},
                                headers=bearer(boot))
    assert created.status_code == 201
    secret = created.json()["token"]
    assert secret.startswith("orch_")
    listed = (await client.get("/api/v1/tokens", headers=bearer(secret))).json()
    assert all("token" not in t for t in listed)
    mine = next(t for t in listed if t["name"] == "ci")
    assert mine["last_used_at"] is not None  # it was just used for this listing
    revoked = await client.delete(f"/api/v1/tokens/{mine['id']}", headers=bearer(boot))
    assert revoked.status_code == 204
    assert (await client.get("/api/v1/tokens", headers=bearer(secret))).status_code == 401


async def test_expired_token_fails(client: httpx.AsyncClient, app: object) -> None:
    await make_user(app, "jack")
    old = await make_token(app, "jack", expires_at=utcnow() - timedelta(seconds=1))
    r = await client.get("/api/v1/auth/me", headers=bearer(old))
    assert r.status_code == 401
    assert r.headers["www-authenticate"].lower().startswith("basic")


async def test_basic_auth_with_token_or_password(client: httpx.AsyncClient, app: object) -> None:
    await make_user(app, "kate")
    token = await make_token(app, "kate")
    for user in ("__token__", "anything"):
        me = await client.get("/api/v1/auth/me", headers=basic(user, token))
        assert me.json()["username"] == "kate"
        assert me.json()["credential"].startswith("token:")
    me = await client.get("/api/v1/auth/me", headers=basic("kate", PASSWORD))
    assert me.json()["credential"] == "basic"
    bad = await client.get("/api/v1/auth/me", headers=basic("kate", "not-the-password"))
    assert bad.status_code == 401


async def test_user_admin_requires_admin(client: httpx.AsyncClient, app: object) -> None:
    await make_user(app, "lena")
    token = await make_token(app, "lena")
    assert (await client.get("/api/v1/users", headers=bearer(token))).status_code == 403
    assert (await client.get("/api/v1/users")).status_code == 401
    assert (await client.get("/api/v1/audit", headers=bearer(token))).status_code == 403


def test_token_create_cli_prints_the_token_last(stack_settings: Settings) -> None:
    env = server_env(stack_settings)

    def orchard(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "orchard.cli.main", *args], env=env,
                              capture_output=True, text=True, timeout=60)

    made = orchard("admin", "create-user", "ops", "--password", "ops-password-123")
    assert made.returncode == 0, made.stderr
    out = orchard("token", "create", "--user", "ops", "--name", "deploy", "--scope", "write")
    assert out.returncode == 0, out.stderr
    token = out.stdout.split()[-1]
    assert token.startswith("orch_")
    listed = orchard("token", "list")
    assert "deploy" in listed.stdout and token not in listed.stdout
    missing = orchard("token", "create", "--user", "nobody", "--name", "x")
    assert missing.returncode != 0 and "not found" in missing.stderr
