"""What drops the near cache (issue 16, point 6): committed content changes
only, whoever commits them. A flood of refused writes leaves a warm page
warm; the CLI on the host (a direct change through its database code,
``orchard gc``, ``orchard token revoke``) reaches the running server by
the request after the command returned."""

from __future__ import annotations

import random
import subprocess
import sys
import time
from typing import Any

import anyio.to_thread
import httpx
import pytest
from fastapi import FastAPI

from orchard.settings import Settings
from tests.conftest import server_env
from tests.integration.test_api_transfer import metric
from tests.pypi_support import make_wheel, upload_form
from tests.support import bearer, make_token, make_user

JSON_V1 = "application/vnd.pypi.simple.v1+json"
PAGE = "/pypi/team/simple/demo-pkg/"
VERSIONS = "/api/v1/project/team/packages/demo-pkg/versions"
HITS = "orchard_near_cache_hits_total"


@pytest.fixture
def settings(stack_settings: Settings) -> Settings:
    # Long enough that only a drop, never the TTL, can explain a fresh answer.
    return stack_settings.model_copy(update={"cache_ttl_local": 120.0, "gc_grace": 0})


@pytest.fixture
async def wheel(client: httpx.AsyncClient) -> None:
    r = await client.post("/api/v1/projects", json={"name": "team", "upstream": False})
    assert r.status_code == 201, r.text
    for version in ("1.0", "2.0"):
        dist = make_wheel("Demo.Pkg", version)
        r = await client.post("/pypi/team/", **upload_form(dist[0], dist[1], "Demo.Pkg", version))
        assert r.status_code == 200, r.text


async def _hits(client: httpx.AsyncClient) -> float:
    return metric((await client.get("/metrics")).text, HITS)


async def _warm(anon: httpx.AsyncClient) -> dict[str, Any]:
    for _ in range(2):
        page = await anon.get(PAGE, headers={"Accept": JSON_V1})
        assert page.status_code == 200
    result: dict[str, Any] = page.json()
    return result


async def _cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``args`` as a subprocess with the server's settings; the event
    loop (and so the PostgreSQL listener) runs while it does, as a server's would."""

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, *args],
            env=server_env(settings),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    done = await anyio.to_thread.run_sync(run)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


async def test_refused_writes_to_random_paths_drop_nothing(
    app: FastAPI, client: httpx.AsyncClient, anon_client: httpx.AsyncClient, wheel: None
) -> None:
    await _warm(anon_client)
    entries = len(app.state.near)
    rng = random.Random(16)
    paths = [
        "/pypi/team/",
        "/api/v1/projects",
        "/api/v1/project/team",
        "/pypi/team/simple/demo-pkg/",
        VERSIONS + "/1.0",
        "/health",
    ]
    started = time.monotonic()
    statuses: set[int] = set()
    for i in range(1000):
        method = ("POST", "PUT", "DELETE", "PATCH")[i % 4]
        path = rng.choice(paths) if i % 3 else f"/{rng.getrandbits(64):x}/{i}"
        r = await anon_client.request(method, path, content=b"x" * (i % 7))
        statuses.add(r.status_code)
    assert time.monotonic() - started < 120
    assert statuses and all(400 <= s < 500 for s in statuses), statuses
    # A refused write with a valid credential drops nothing either.
    r = await client.post("/api/v1/projects", json={"name": "team"})
    assert r.status_code == 409
    before = await _hits(client)
    page = await anon_client.get(PAGE, headers={"Accept": JSON_V1})
    assert page.status_code == 200
    assert await _hits(client) == before + 1, "the warm page was dropped"
    assert len(app.state.near) == entries and app.state.near.drops == 0


async def test_a_successful_write_that_changes_no_content_drops_nothing(
    app: FastAPI, client: httpx.AsyncClient, anon_client: httpx.AsyncClient, wheel: None
) -> None:
    await _warm(anon_client)
    r = await client.post("/api/v1/tokens", json={"name": "ci", "scope": "read"})
    assert r.status_code == 201, r.text
    before = await _hits(client)
    assert (await anon_client.get(PAGE, headers={"Accept": JSON_V1})).status_code == 200
    assert await _hits(client) == before + 1


async def test_a_change_through_the_clis_database_code_shows_at_once(
    app: FastAPI, settings: Settings, anon_client: httpx.AsyncClient, wheel: None
) -> None:
    page = await _warm(anon_client)
    assert all(not f.get("yanked") for f in page["files"])
    script = (
        "from sqlalchemy import update\n"
        "from orchard.cli.database import run_with_db\n"
        "from orchard.db.models import Version\n"
        "async def work(db, settings):\n"
        "    async with db.transaction() as session:\n"
        "        await session.execute(update(Version).values(yanked=True, yank_reason='host'))\n"
        "run_with_db(work)\n"
    )
    await _cli(settings, "-c", script)
    page = (await anon_client.get(PAGE, headers={"Accept": JSON_V1})).json()
    assert [f["yanked"] for f in page["files"]] == ["host", "host"]


async def test_orchard_gc_reaches_the_running_server(
    app: FastAPI,
    settings: Settings,
    client: httpx.AsyncClient,
    anon_client: httpx.AsyncClient,
    wheel: None,
) -> None:
    r = await client.delete(VERSIONS + "/2.0")  # its file's blob is now garbage
    assert r.status_code == 204
    assert (await _warm(anon_client))["versions"] == ["1.0"]
    drops = app.state.near.drops
    done = await _cli(settings, "-m", "orchard.cli.main", "gc", "--grace", "0")
    assert "freed" in done.stdout, done.stdout
    before = await _hits(client)
    page = await anon_client.get(PAGE, headers={"Accept": JSON_V1})
    assert page.json()["versions"] == ["1.0"]
    assert await _hits(client) == before, "answered from a copy made before gc"
    assert app.state.near.drops == drops + 1


async def test_orchard_token_revoke_reaches_the_running_server(
    app: FastAPI, settings: Settings, anon_client: httpx.AsyncClient, wheel: None
) -> None:
    await make_user(app, "ci")
    token = await make_token(app, "ci", scope="read")
    assert (await anon_client.get(PAGE, headers=bearer(token))).status_code == 200
    listed = await anon_client.get("/api/v1/tokens", headers=bearer(token))
    assert listed.status_code == 200, listed.text
    await _cli(settings, "-m", "orchard.cli.main", "token", "revoke", str(listed.json()[0]["id"]))
    assert (await anon_client.get(PAGE, headers=bearer(token))).status_code == 401


async def test_a_credentialed_request_never_gets_an_entry_of_a_private_answer(
    app: FastAPI, client: httpx.AsyncClient, anon_client: httpx.AsyncClient, wheel: None
) -> None:
    await _warm(anon_client)  # an anonymous entry of the public page
    r = await client.patch("/api/v1/project/team", json={"is_public": False})
    assert r.status_code == 200
    await make_user(app, "outsider")
    outsider = await make_token(app, "outsider", scope="read")
    for _ in range(2):
        assert (await anon_client.get(PAGE, headers=bearer(outsider))).status_code == 404
        assert (await anon_client.get(PAGE, headers={"Accept": JSON_V1})).status_code == 404
        member = await client.get(PAGE, headers={"Accept": JSON_V1})
        assert member.status_code == 200 and member.headers["cache-control"].startswith("private")
    assert len(app.state.near) == 0
