"""The last active administrator can be neither demoted nor disabled, also
by two requests at once (issue 15, point 13).

Runs on the stack chosen by ``ORCHARD_TEST_STACK`` (on PostgreSQL the two
concurrent requests really interleave; the row lock decides).
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from orchard.db.models import User
from tests.support import bearer, make_token, make_user

USERS = "/api/v1/users"


@pytest.fixture
def http(anon_client: httpx.AsyncClient) -> httpx.AsyncClient:
    """These tests bring their own credentials."""
    return anon_client


async def active_admins(app: Any) -> int:
    async with app.state.db.session() as session:
        count = await session.scalar(
            select(func.count(User.id)).where(User.is_admin.is_(True), User.disabled.is_(False))
        )
    return int(count or 0)


async def test_the_only_admin_cannot_be_demoted_or_disabled(client: httpx.AsyncClient) -> None:
    for change in ({"is_admin": False}, {"disabled": True}, {"is_admin": False, "disabled": True}):
        r = await client.patch(f"{USERS}/admin", json=change)
        assert r.status_code == 409, (change, r.text)
        assert "last active administrator" in r.json()["error"]["message"]
    r = await client.get(f"{USERS}/admin")
    assert r.json()["is_admin"] is True and r.json()["disabled"] is False
    # Changes that keep an administrator still work.
    r = await client.patch(f"{USERS}/admin", json={"is_admin": True, "disabled": False})
    assert r.status_code == 200, r.text


async def test_a_disabled_admin_does_not_count(
    app: Any, client: httpx.AsyncClient, http: httpx.AsyncClient
) -> None:
    await make_user(app, "backup", admin=True)
    backup = bearer(await make_token(app, "backup"))
    r = await client.patch(f"{USERS}/backup", json={"disabled": True})
    assert r.status_code == 200, r.text
    r = await client.patch(f"{USERS}/admin", json={"is_admin": False})
    assert r.status_code == 409, r.text
    r = await client.patch(f"{USERS}/backup", json={"disabled": False})
    assert r.status_code == 200, r.text
    r = await client.patch(f"{USERS}/admin", json={"is_admin": False})
    assert r.status_code == 200, r.text  # backup is an active administrator
    r = await http.patch(f"{USERS}/backup", headers=backup, json={"disabled": True})
    assert r.status_code == 409, r.text
    assert await active_admins(app) == 1


async def test_two_concurrent_demotions_leave_one_admin(
    app: Any, http: httpx.AsyncClient
) -> None:
    await make_user(app, "ann", admin=True)
    await make_user(app, "bob", admin=True)
    ann = bearer(await make_token(app, "ann"))
    # The bootstrap administrator goes first: two remain, ann and bob.
    r = await http.patch(f"{USERS}/admin", headers=ann, json={"is_admin": False})
    assert r.status_code == 200, r.text
    for round_ in range(3):
        results = await asyncio.gather(
            http.patch(f"{USERS}/ann", headers=ann, json={"disabled": True}),
            http.patch(f"{USERS}/bob", headers=ann, json={"is_admin": False}),
        )
        statuses = sorted(r.status_code for r in results)
        assert statuses[0] == 200 and statuses[1] in (401, 403, 409), (round_, statuses)
        assert await active_admins(app) == 1
        # Both administrators again for the next round.
        async with app.state.db.transaction() as session:
            pair = await session.scalars(select(User).where(User.username.in_(["ann", "bob"])))
            for user in pair:
                user.is_admin, user.disabled = True, False
