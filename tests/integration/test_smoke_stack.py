"""The stack fixtures themselves: the app starts and stores a file."""

from __future__ import annotations

import httpx


async def test_health_and_round_trip(client: httpx.AsyncClient) -> None:
    health = await client.get("/health")
    assert health.status_code == 200
    assert health.json()["status"] == "healthy"
    assert (await client.post("/api/v1/projects", json={"name": "p"})).status_code == 201
    r = await client.put("/api/v1/project/p/packages/a/versions/1/files/x.bin", content=b"hi")
    assert r.status_code == 201, r.text
    got = await client.get("/api/v1/project/p/packages/a/versions/1/files/x.bin")
    assert got.content == b"hi"
