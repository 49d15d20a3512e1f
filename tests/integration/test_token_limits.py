"""A token creates no token broader or longer-lived than itself, and a
read-only token changes nothing, not even another token (issue 15, point 8).

Runs on the stack chosen by ``ORCHARD_TEST_STACK``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest

from orchard.db.base import utcnow
from orchard.settings import Settings
from tests.support import bearer, make_project, make_token, make_user

TOKENS = "/api/v1/tokens"


@pytest.fixture
def http(anon_client: httpx.AsyncClient) -> httpx.AsyncClient:
    """These tests bring their own credentials."""
    return anon_client


async def _ids(http: httpx.AsyncClient, token: str) -> dict[str, int]:
    r = await http.get(TOKENS, headers=bearer(token))
    assert r.status_code == 200, r.text
    return {t["name"]: t["id"] for t in r.json() if t["revoked_at"] is None}


async def _mint(http: httpx.AsyncClient, token: str, **body: Any) -> httpx.Response:
    return await http.post(TOKENS, headers=bearer(token), json={"name": "child", **body})


async def test_read_token_revokes_nothing(app: Any, http: httpx.AsyncClient) -> None:
    await make_user(app, "dora")
    full = await make_token(app, "dora")
    read = await make_token(app, "dora", scope="read")
    ids = await _ids(http, full)
    for target in ids.values():  # another token of the owner, and itself
        r = await http.delete(f"{TOKENS}/{target}", headers=bearer(read))
        assert r.status_code == 403, r.text
        assert "read-only" in r.json()["error"]["message"]
    assert len(await _ids(http, full)) == 2  # both still live
    r = await _mint(http, read, scope="read")
    assert r.status_code == 403


async def test_restricted_token_revokes_only_within_its_projects(
    app: Any, http: httpx.AsyncClient
) -> None:
    await make_user(app, "dora")
    await make_project(app, "alpha")
    full = await make_token(app, "dora")
    narrow = await make_token(app, "dora", projects=["alpha"])
    r = await _mint(http, narrow, projects=["alpha"])
    assert r.status_code == 201, r.text
    sibling = r.json()["id"]
    ids = await _ids(http, full)
    unrestricted = [i for name, i in ids.items() if i != sibling and name != "child"]
    for target in unrestricted:
        if target == max(unrestricted):  # the narrow token itself (made last)
            continue
        r = await http.delete(f"{TOKENS}/{target}", headers=bearer(narrow))
        assert r.status_code == 403, r.text
    r = await http.delete(f"{TOKENS}/{sibling}", headers=bearer(narrow))
    assert r.status_code == 204, r.text
    r = await http.get(TOKENS, headers=bearer(full))
    assert r.status_code == 200  # the unrestricted token survived


async def test_restricted_token_mints_only_within_its_projects(
    app: Any, http: httpx.AsyncClient
) -> None:
    await make_user(app, "dora")
    for name in ("alpha", "beta"):
        await make_project(app, name)
    narrow = await make_token(app, "dora", projects=["alpha"])
    for body in ({}, {"projects": ["alpha", "beta"]}, {"projects": ["beta"]}):
        r = await _mint(http, narrow, **body)
        assert r.status_code == 403, (body, r.text)
    r = await _mint(http, narrow, projects=["alpha"], scope="read")
    assert r.status_code == 201, r.text
    assert r.json()["projects"] == ["alpha"]


async def test_expiring_token_mints_no_longer_lived_token(
    app: Any, http: httpx.AsyncClient
) -> None:
    await make_user(app, "dora")
    expiry = utcnow() + timedelta(hours=1)
    short = await make_token(app, "dora", expires_at=expiry)
    later = (expiry + timedelta(minutes=5)).isoformat()
    for body in ({}, {"expires_at": later}):  # never, or later than itself
        r = await _mint(http, short, **body)
        assert r.status_code == 403, (body, r.text)
        assert "expire" in r.json()["error"]["message"]
    sooner = expiry - timedelta(minutes=5)
    r = await _mint(http, short, expires_at=sooner.isoformat())
    assert r.status_code == 201, r.text
    # A time without a zone is UTC, not a server error.
    naive = sooner.replace(tzinfo=None).isoformat()
    r = await _mint(http, short, expires_at=naive)
    assert r.status_code == 201, r.text


async def test_huge_token_id_is_a_client_error(app: Any, http: httpx.AsyncClient) -> None:
    await make_user(app, "dora")
    full = await make_token(app, "dora")
    for token_id in ("0", str(2**31), "9" * 30):
        r = await http.delete(f"{TOKENS}/{token_id}", headers=bearer(full))
        assert r.status_code == 422, (token_id, r.status_code, r.text)


async def test_read_token_of_an_administrator_changes_no_user(
    app: Any, http: httpx.AsyncClient
) -> None:
    await make_user(app, "dora")
    read = await make_token(app, "admin", scope="read")
    r = await http.patch("/api/v1/users/dora", headers=bearer(read), json={"is_admin": True})
    assert r.status_code == 403, r.text
    r = await http.post(
        "/api/v1/users",
        headers=bearer(read),
        json={"username": "mallory", "password": "long-enough-password-1"},
    )
    assert r.status_code == 403, r.text
    r = await http.get("/api/v1/users/dora", headers=bearer(read))
    assert r.status_code == 200 and r.json()["is_admin"] is False


async def test_cli_huge_token_id_is_not_found(app: Any, settings: Settings) -> None:
    from tests.integration.test_cli import orchard_async

    result = await orchard_async(settings, "token", "revoke", "9" * 30)
    assert result.returncode == 1, result.stderr
    assert "not found" in result.stderr and "Traceback" not in result.stderr
