"""Upstream sources: the REST API (admin only, credentials sealed and never
shown), credentials sent to the upstream, priority order, /health status."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from orchard.db.models import UpstreamSource
from orchard.settings import Settings
from tests.fakes.pypi_upstream import FakeFile, FakePyPI
from tests.pypi_proxy_support import file_url, page, publish


@pytest.fixture
def settings(stack_settings: Settings, fake: FakePyPI) -> Settings:
    return stack_settings.model_copy(
        update={"upstream_pypi_url": fake.url, "http_connect_timeout": 1.0,
                "http_read_timeout": 1.0}
    )


@pytest.fixture
def second() -> Iterator[FakePyPI]:
    server = FakePyPI().start()
    try:
        yield server
    finally:
        server.stop()


async def test_sources_api_credentials_are_sealed_and_sent(
    client: httpx.AsyncClient, app: Any, second: FakePyPI
) -> None:
    secret = "s3cret-upstream-password"
    expected = "Basic " + base64.b64encode(f"robot:{secret}".encode()).decode()
    second.index.require_auth = expected
    wheel = publish(second, "private-dep", "1.0")
    body = {"name": "corp", "format": "pypi", "url": second.url, "priority": -1,
            "auth_type": "basic", "username": "robot", "password": secret}
    created = await client.post("/api/v1/upstreams", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["has_credentials"] is True
    for r in (created, await client.get("/api/v1/upstreams"),
              await client.get("/api/v1/upstreams/corp")):
        assert r.status_code in (200, 201)
        assert secret not in r.text and "password" not in r.json().__repr__().lower()
    async with app.state.db.session() as session:
        raw = await session.scalar(select(UpstreamSource.secret_ciphertext))
    assert raw and secret not in raw
    url = await file_url(client, "private-dep", wheel.filename)
    assert (await client.get(url)).content == wheel.content
    assert second.index.headers["/simple/private-dep/"]["authorization"] == expected
    assert second.index.headers[f"/files/{wheel.filename}"]["authorization"] == expected
    test = await client.post("/api/v1/upstreams/corp/test")
    assert test.status_code == 200 and test.json()["ok"] is True, test.text
    audit = await client.get("/api/v1/audit", params={"action": "upstream.create"})
    assert secret not in audit.text
    # Disabled: no longer asked.
    patched = await client.patch("/api/v1/upstreams/corp", json={"enabled": False})
    assert patched.status_code == 200 and patched.json()["has_credentials"] is True
    assert (await page(client, "never-asked")).status_code == 404
    assert second.hits("/simple/never-asked/") == 0
    assert (await client.delete("/api/v1/upstreams/corp")).status_code == 204
    assert (await client.get("/api/v1/upstreams/corp")).status_code == 404


async def test_sources_api_rejects_bad_input(client: httpx.AsyncClient) -> None:
    bad = [
        {"name": "x", "format": "pypi", "url": "ftp://h/simple"},
        {"name": "x", "format": "pypi", "url": "http://u:p@h/simple"},
        {"name": "x", "format": "cargo", "url": "http://h/simple"},
        {"name": "x", "format": "pypi", "url": "http://h/simple", "auth_type": "basic"},
        {"name": "../x", "format": "pypi", "url": "http://h/simple"},
        {"name": "pypi", "format": "pypi", "url": "http://h/simple"},
    ]
    for body in bad:
        r = await client.post("/api/v1/upstreams", json=body)
        assert r.status_code in (400, 422), (body, r.text)
    ok = {"name": "x", "format": "pypi", "url": "http://127.0.0.1:9/simple"}
    assert (await client.post("/api/v1/upstreams", json=ok)).status_code == 201
    assert (await client.post("/api/v1/upstreams", json=ok)).status_code == 409
    test = (await client.post("/api/v1/upstreams/x/test")).json()
    assert test["ok"] is False and test["error"]


async def test_sources_api_still_accepts_the_deprecated_ecosystem_field(
    client: httpx.AsyncClient,
) -> None:
    body = {"name": "old", "ecosystem": "npm", "url": "http://127.0.0.1:9/registry"}
    created = await client.post("/api/v1/upstreams", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["format"] == "npm" and "ecosystem" not in created.json()


async def test_sources_merge_in_priority_order(
    client: httpx.AsyncClient, app: Any, fake: FakePyPI, second: FakePyPI
) -> None:
    app.state.settings.upstream_pypi_url = ""  # only the database sources
    low = fake.index.add("tiny", FakeFile("tiny-1.0.tar.gz", b"from the low-priority source"))
    fake.index.add("tiny", FakeFile("tiny-3.0.tar.gz", b"only low"))
    high = second.index.add("tiny", FakeFile("tiny-1.0.tar.gz", b"from the high-priority one"))
    second.index.add("tiny", FakeFile("tiny-2.0.tar.gz", b"only high"))
    for name, server, priority in (("low", fake, 20), ("high", second, 5)):
        r = await client.post("/api/v1/upstreams", json={
            "name": name, "format": "pypi", "url": server.url, "priority": priority})
        assert r.status_code == 201
    doc = (await page(client, "tiny")).json()
    files = {f["filename"]: f for f in doc["files"]}
    assert set(files) == {"tiny-1.0.tar.gz", "tiny-2.0.tar.gz", "tiny-3.0.tar.gz"}
    assert files["tiny-1.0.tar.gz"]["hashes"]["sha256"] == high.sha256 != low.sha256
    assert (await client.get(files["tiny-1.0.tar.gz"]["url"])).content == high.content
    assert (await client.get(files["tiny-3.0.tar.gz"]["url"])).content == b"only low"


async def test_upstream_status_lists_the_effective_sources(
    client: httpx.AsyncClient, app: Any, fake: FakePyPI
) -> None:
    from orchard.upstream.sources import upstream_status

    await client.post("/api/v1/upstreams", json={
        "name": "extra", "format": "pypi", "url": "http://127.0.0.1:9/simple",
        "priority": 3, "auth_type": "bearer", "token": "tok-secret"})
    status = await upstream_status(app)
    pypi = [s for s in status if s["format"] == "pypi"]
    assert [(s["name"], s["origin"]) for s in pypi] == [("pypi", "settings"),
                                                        ("extra", "database")]
    assert "tok-secret" not in repr(status)
