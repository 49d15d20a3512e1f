"""The near cache, the application's outermost middleware (near_cache.py):
warm anonymous answers come from memory; committed content changes drop it,
on this and on every other process (REST on another replica, the CLI on
the host), and nothing else does; no permission or credential can make an
answer wrong."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from orchard.app import create_app
from orchard.settings import Settings
from tests.conftest import STACK
from tests.pypi_support import make_wheel, upload_form

JSON_V1 = "application/vnd.pypi.simple.v1+json"
PAGE = "/pypi/team/simple/demo-pkg/"
VERSION = "/api/v1/project/team/packages/demo-pkg/versions/1.0"


@pytest.fixture
def settings(stack_settings: Settings) -> Settings:
    # Long enough that only an invalidation, never the TTL, can explain a fresh answer.
    return stack_settings.model_copy(update={"cache_ttl_local": 60.0})


@pytest.fixture
async def wheel(client: httpx.AsyncClient) -> tuple[str, bytes, bytes]:
    r = await client.post("/api/v1/projects", json={"name": "team", "upstream": False})
    assert r.status_code == 201, r.text
    dist = make_wheel("Demo.Pkg", "1.0")
    r = await client.post("/pypi/team/", **upload_form(dist[0], dist[1], "Demo.Pkg", "1.0"))
    assert r.status_code == 200, r.text
    return dist


def hits(app: Any) -> int:
    return int(app.state.near.hits)


async def test_a_warm_page_is_answered_from_memory(
    app: FastAPI, anon_client: httpx.AsyncClient, wheel: Any
) -> None:
    first = await anon_client.get(PAGE, headers={"Accept": JSON_V1})
    assert first.status_code == 200
    before = hits(app)
    second = await anon_client.get(PAGE, headers={"Accept": JSON_V1})
    assert hits(app) == before + 1
    assert second.content == first.content
    assert second.headers["content-type"] == JSON_V1
    assert second.headers["etag"] == first.headers["etag"]
    assert second.headers["vary"] == "Accept"
    # Another Accept is another answer, negotiated by the application.
    html = await anon_client.get(PAGE, headers={"Accept": "text/html"})
    assert html.headers["content-type"] == "text/html; charset=utf-8"
    assert wheel[0] in html.text
    # A conditional request on a warm page: 304 with the validator, no body.
    again = await anon_client.get(
        PAGE, headers={"Accept": JSON_V1, "If-None-Match": first.headers["etag"]}
    )
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == first.headers["etag"]
    head = await anon_client.head(PAGE, headers={"Accept": JSON_V1})
    assert head.status_code == 200 and head.content == b""


async def test_writes_show_at_once(
    app: FastAPI, client: httpx.AsyncClient, anon_client: httpx.AsyncClient, wheel: Any
) -> None:
    for _ in range(2):
        page = await anon_client.get(PAGE, headers={"Accept": JSON_V1})
        assert page.json()["files"][0].get("yanked") in (None, False)
    dist = make_wheel("Demo.Pkg", "2.0")
    r = await client.post("/pypi/team/", **upload_form(dist[0], dist[1], "Demo.Pkg", "2.0"))
    assert r.status_code == 200, r.text
    page = await anon_client.get(PAGE, headers={"Accept": JSON_V1})
    assert page.json()["versions"] == ["1.0", "2.0"]
    assert (await anon_client.get(PAGE, headers={"Accept": JSON_V1})).json() == page.json()
    r = await client.delete(VERSION.replace("1.0", "2.0"))
    assert r.status_code == 204, r.text
    page = await anon_client.get(PAGE, headers={"Accept": JSON_V1})
    assert page.json()["versions"] == ["1.0"]
    r = await client.patch(VERSION, json={"yanked": True, "yank_reason": "broken"})
    assert r.status_code == 200
    page = await anon_client.get(PAGE, headers={"Accept": JSON_V1})
    assert page.json()["files"][0]["yanked"] == "broken"
    # A project turned private disappears for anonymous readers at once.
    r = await client.patch("/api/v1/project/team", json={"is_public": False})
    assert r.status_code == 200, r.text
    assert (await anon_client.get(PAGE, headers={"Accept": JSON_V1})).status_code == 404


async def test_answers_with_credentials_are_never_kept(
    app: FastAPI, client: httpx.AsyncClient, anon_client: httpx.AsyncClient, wheel: Any
) -> None:
    r = await client.patch("/api/v1/project/team", json={"is_public": False})
    assert r.status_code == 200
    for _ in range(3):
        assert (await client.get(PAGE)).status_code == 200
    assert len(app.state.near) == 0
    assert (await anon_client.get(PAGE)).status_code == 404
    # A wrong credential is refused even where an anonymous answer is warm.
    await client.patch("/api/v1/project/team", json={"is_public": True})
    assert (await anon_client.get(PAGE)).status_code == 200
    assert (await anon_client.get(PAGE)).status_code == 200
    wrong = await anon_client.get(PAGE, headers={"Authorization": "Bearer orch_wrong"})
    assert wrong.status_code == 401


async def test_failed_and_redirected_answers_are_not_kept(
    app: FastAPI, anon_client: httpx.AsyncClient, wheel: Any
) -> None:
    assert (await anon_client.get("/pypi/team/simple/nothing-here/")).status_code == 404
    assert (await anon_client.get("/pypi/team/simple/Demo.Pkg/")).status_code == 301
    assert len(app.state.near) == 0


async def test_files_streamed_through_python_are_not_held_in_memory(
    app: FastAPI, anon_client: httpx.AsyncClient, wheel: Any
) -> None:
    # In process there is no pathsend: the file's bytes pass through Python.
    url = f"/pypi/team/files/demo-pkg/1.0/{wheel[0]}"
    for _ in range(2):
        r = await anon_client.get(url)
        assert r.status_code == 200 and r.content == wheel[1]
    assert len(app.state.near) == 0


async def test_turned_off_with_a_zero_ttl(
    stack_settings: Settings, wheel: Any
) -> None:
    other = create_app(stack_settings.model_copy(update={"cache_ttl_local": 0.0}))
    async with other.router.lifespan_context(other):
        transport = httpx.ASGITransport(app=other)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            for _ in range(3):
                assert (await c.get(PAGE)).status_code == 200
        assert len(other.state.near) == 0 and other.state.near.hits == 0


async def test_a_write_on_one_replica_reaches_the_others(
    app: FastAPI, settings: Settings, client: httpx.AsyncClient, wheel: Any
) -> None:
    """Two replicas on one database (PostgreSQL: NOTIFY at commit; SQLite:
    the other process reads the epoch row)."""
    other = create_app(settings)
    async with other.router.lifespan_context(other):
        transport = httpx.ASGITransport(app=other)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            await _listening(other)
            for _ in range(2):
                page = await c.get(PAGE, headers={"Accept": JSON_V1})
                assert page.json()["files"][0].get("yanked") in (None, False)
            assert other.state.near.hits >= 1
            r = await client.patch(VERSION, json={"yanked": True, "yank_reason": "broken"})
            assert r.status_code == 200
            assert await _seen_by(c, lambda p: p["files"][0].get("yanked") == "broken")
            # An upload and a delete on the first replica, read on the second.
            dist = make_wheel("Demo.Pkg", "2.0")
            r = await client.post("/pypi/team/", **upload_form(dist[0], dist[1], "Demo.Pkg", "2.0"))
            assert r.status_code == 200, r.text
            assert await _seen_by(c, lambda p: "2.0" in p["versions"])
            r = await client.delete(VERSION.replace("1.0", "2.0"))
            assert r.status_code == 204, r.text
            assert await _seen_by(c, lambda p: "2.0" not in p["versions"])


async def _listening(app: Any) -> None:
    """PostgreSQL: wait until the replica's LISTEN connection is up."""
    epoch = app.state.near._epoch
    listening = getattr(epoch, "listening", None)
    if listening is not None:
        await asyncio.wait_for(listening.wait(), 10)


async def _seen_by(c: httpx.AsyncClient, seen: Any) -> bool:
    """Whether the other replica answers the change, at once on SQLite (the
    epoch row is read at the next request a millisecond on), within 0.5 s on
    PostgreSQL: well under the 1 s poll (cache/epoch.py), so NOTIFY did it."""
    deadline = asyncio.get_running_loop().time() + (0.5 if STACK == "production" else 0.0)
    while True:
        await asyncio.sleep(0.002)
        if seen((await c.get(PAGE, headers={"Accept": JSON_V1})).json()):
            return True
        if asyncio.get_running_loop().time() >= deadline:
            return False


def test_files_are_served_by_path_once_warm(live_server: Any) -> None:
    """On the real server: the second anonymous download of a file on disk
    is handed to the server by path from memory, byte for byte the same;
    Range and conditional requests are still answered exactly."""
    with httpx.Client(base_url=live_server.url, timeout=30) as http:
        auth = {"Authorization": f"Bearer {live_server.token}"}
        r = http.post("/api/v1/projects", json={"name": "team", "upstream": False}, headers=auth)
        assert r.status_code == 201, r.text
        filename, content, _ = make_wheel("Demo.Pkg", "1.0")
        r = http.post("/pypi/team/", headers=auth,
                      **upload_form(filename, content, "Demo.Pkg", "1.0"))
        assert r.status_code == 200, r.text
        page = http.get(PAGE, headers={"Accept": JSON_V1}).json()
        url = page["files"][0]["url"]

        def near_hits() -> int:
            return int(http.get("/health").json()["cache"]["near"]["hits"])

        bodies = []
        before = near_hits()
        for _ in range(3):
            r = http.get(url)
            assert r.status_code == 200
            bodies.append(r.content)
        if STACK == "embedded":  # S3 blobs stream through Python and are not held
            assert near_hits() >= before + 2
        assert all(hashlib.sha256(b).hexdigest() == hashlib.sha256(content).hexdigest()
                   for b in bodies)
        r = http.get(url, headers={"Range": "bytes=0-9"})
        assert r.status_code == 206 and r.content == content[:10]
        r = http.get(url, headers={"If-None-Match": f'"{hashlib.sha256(content).hexdigest()}"'})
        assert r.status_code == 304
