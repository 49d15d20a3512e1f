"""Resumable uploads (/api/v1/uploads) on the configured stack.

A session is created, chunks are PATCHed at offsets, the offset can be asked
for at any time (so a client that lost its connection resumes where the
server is), and completion verifies the SHA-256 and stores the file through
the normal upload path. Wrong offsets, concurrent chunks, wrong hashes, size
limits, aborts and expiry leave no stray bytes behind.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import urlsplit

import anyio.to_thread
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from orchard.core import uploads as upload_sessions
from orchard.db.models import UploadPart, UploadSession
from orchard.settings import Settings
from orchard.storage.s3 import S3Store
from tests.conftest import STACK, LiveServer

TARGET = {"project": "p", "package": "pkg", "version": "1.0", "filename": "big.bin"}
FILE_URL = "/api/v1/project/p/packages/pkg/versions/1.0/files/big.bin"

DATA = os.urandom(700 * 1024 + 33)
SHA = hashlib.sha256(DATA).hexdigest()
CUT = 256 * 1024 + 5  # where the first chunk ends


@pytest.fixture
def settings(stack_settings: Settings, request: pytest.FixtureRequest) -> Settings:
    """The stack's settings; a test may change some with indirect parametrisation."""
    updates: dict[str, Any] = getattr(request, "param", {})
    return stack_settings.model_copy(update=updates) if updates else stack_settings


@pytest.fixture
async def project(client: httpx.AsyncClient) -> str:
    r = await client.post("/api/v1/projects", json={"name": "p"})
    assert r.status_code == 201, r.text
    return "p"


async def start(client: httpx.AsyncClient, **extra: Any) -> str:
    r = await client.post("/api/v1/uploads", json={**TARGET, **extra})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["offset"] == 0
    assert r.headers["upload-offset"] == "0"
    assert r.headers["location"] == f"/api/v1/uploads/{body['id']}"
    for key, value in TARGET.items():
        assert body[key] == value
    return str(body["id"])


async def patch(
    client: httpx.AsyncClient, upload_id: str, offset: int, chunk: bytes | AsyncIterator[bytes]
) -> httpx.Response:
    return await client.patch(
        f"/api/v1/uploads/{upload_id}", content=chunk, headers={"Upload-Offset": str(offset)}
    )


async def offset_of(client: httpx.AsyncClient, upload_id: str) -> int:
    r = await client.get(f"/api/v1/uploads/{upload_id}")
    assert r.status_code == 200, r.text
    assert r.headers["upload-offset"] == str(r.json()["offset"])
    return int(r.json()["offset"])


async def complete(client: httpx.AsyncClient, upload_id: str, sha256: str) -> httpx.Response:
    return await client.post(f"/api/v1/uploads/{upload_id}/complete", json={"sha256": sha256})


async def parts_left(app: FastAPI, settings: Settings, upload_id: str) -> list[str]:
    """What the storage still holds of an upload's parts."""
    storage = app.state.storage
    if isinstance(storage, S3Store):
        prefix = f"{storage.prefix}parts/uploads/{upload_id}/"

        def listing() -> list[str]:
            page = storage.client.list_objects_v2(Bucket=storage.bucket, Prefix=prefix)
            return [str(o["Key"]) for o in page.get("Contents", [])]

        return await anyio.to_thread.run_sync(listing)
    root = settings.data_dir / "blobs" / ".parts" / "uploads" / upload_id
    return sorted(str(p) for p in root.rglob("*")) if root.exists() else []


async def session_rows(app: FastAPI, upload_id: str) -> tuple[UploadSession | None, int]:
    async with app.state.db.session() as s:
        row = await s.get(UploadSession, upload_id)
        count = await s.scalar(
            select(func.count()).select_from(UploadPart).where(UploadPart.session_id == upload_id)
        )
    return row, int(count or 0)


async def assert_nothing_stored(client: httpx.AsyncClient, sha256: str) -> None:
    assert (await client.get(f"/api/v1/artifacts/{sha256}")).status_code == 404
    assert (await client.get(FILE_URL)).status_code == 404


# --- the happy path -------------------------------------------------------------------------


async def test_create_patch_offset_complete(
    client: httpx.AsyncClient, project: str, app: FastAPI, settings: Settings
) -> None:
    upload_id = await start(client, size=len(DATA))

    r = await patch(client, upload_id, 0, DATA[:CUT])
    assert r.status_code == 200, r.text
    assert r.json()["offset"] == CUT
    assert r.headers["upload-offset"] == str(CUT)

    r = await client.get(f"/api/v1/uploads/{upload_id}")
    assert r.status_code == 200
    assert r.json()["offset"] == CUT
    assert r.json()["size"] == len(DATA)
    assert r.headers["upload-offset"] == str(CUT)
    head = await client.head(f"/api/v1/uploads/{upload_id}")
    assert head.status_code == 200
    assert head.headers["upload-offset"] == str(CUT)
    assert head.content == b""

    # Content-Range names the offset too; the next chunk is streamed (chunked body).
    async def body() -> AsyncIterator[bytes]:
        rest = DATA[CUT:]
        for i in range(0, len(rest), 100_000):
            yield rest[i : i + 100_000]

    r = await client.patch(
        f"/api/v1/uploads/{upload_id}",
        content=body(),
        headers={"Content-Range": f"bytes {CUT}-{len(DATA) - 1}/{len(DATA)}"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["offset"] == len(DATA)

    r = await complete(client, upload_id, SHA)
    assert r.status_code == 201, r.text
    out = r.json()
    assert (out["sha256"], out["size"], out["created"]) == (SHA, len(DATA), True)
    assert out["md5"] == hashlib.md5(DATA, usedforsecurity=False).hexdigest()
    got = await client.get(FILE_URL)
    assert got.status_code == 200
    assert got.content == DATA
    # The session and its parts are gone once the file is stored.
    assert (await client.get(f"/api/v1/uploads/{upload_id}")).status_code == 404
    assert await parts_left(app, settings, upload_id) == []
    assert await session_rows(app, upload_id) == (None, 0)


async def test_resume_with_a_fresh_client(
    client: httpx.AsyncClient, project: str, app: FastAPI
) -> None:
    upload_id = await start(client)  # size not declared
    r = await patch(client, upload_id, 0, DATA[:CUT])
    assert r.status_code == 200, r.text
    await client.aclose()  # the connection is lost

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver", headers=client.headers
    ) as again:
        head = await again.head(f"/api/v1/uploads/{upload_id}")
        offset = int(head.headers["upload-offset"])
        assert offset == CUT
        step = 200_000
        while offset < len(DATA):
            r = await patch(again, upload_id, offset, DATA[offset : offset + step])
            assert r.status_code == 200, r.text
            offset = r.json()["offset"]
        assert await offset_of(again, upload_id) == len(DATA)
        r = await complete(again, upload_id, SHA)
        assert r.status_code == 201, r.text
        assert (await again.get(FILE_URL)).content == DATA
        content = await again.get(f"/api/v1/artifacts/{SHA}/content")
        assert content.content == DATA


def chunk_in_flight(settings: Settings, upload_id: str) -> list[str]:
    """Temporary files of a chunk the server is still receiving."""
    if STACK == "production":  # S3Store spools a part locally before sending it
        staging = settings.data_dir / "staging"
        return [p.name for p in staging.iterdir()] if staging.exists() else []
    parts = settings.data_dir / "blobs" / ".parts" / "uploads" / upload_id
    return [p.name for p in parts.glob("*.tmp")] if parts.exists() else []


async def wait_for(condition: Callable[[], bool], what: str, limit: float = 15) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def test_interrupted_chunk_on_a_real_server(
    live_server: LiveServer, settings: Settings
) -> None:
    """A PATCH whose connection drops mid-body moves nothing; the client asks
    for the offset and resumes from there."""
    async with httpx.AsyncClient(
        base_url=live_server.url, timeout=30, headers=live_server.auth
    ) as http:
        assert (await http.post("/api/v1/projects", json={"name": "p"})).status_code == 201
        upload_id = await start(http, size=len(DATA))
        assert (await patch(http, upload_id, 0, DATA[:CUT])).status_code == 200

        # Half of the second chunk; once the server is writing it, the connection is cut.
        url = urlsplit(live_server.url)
        reader, writer = await asyncio.open_connection(url.hostname, url.port)
        rest = DATA[CUT:]
        head = (
            f"PATCH /api/v1/uploads/{upload_id} HTTP/1.1\r\nHost: {url.netloc}\r\n"
            f"Authorization: Bearer {live_server.token}\r\n"
            f"Upload-Offset: {CUT}\r\nContent-Length: {len(rest)}\r\n\r\n"
        )
        writer.write(head.encode() + rest[: len(rest) // 2])
        await writer.drain()
        await wait_for(lambda: bool(chunk_in_flight(settings, upload_id)), "the chunk to start")
        writer.close()
        await writer.wait_closed()
        del reader
        await wait_for(lambda: not chunk_in_flight(settings, upload_id), "the cleanup")

        # Nothing of the broken chunk was kept; the client asks where to go on.
        assert await offset_of(http, upload_id) == CUT
        if STACK != "production":
            parts = settings.data_dir / "blobs" / ".parts" / "uploads" / upload_id
            assert len(list(parts.iterdir())) == 1
        offset = await offset_of(http, upload_id)
        r = await patch(http, upload_id, offset, DATA[offset:])
        assert r.status_code == 200, r.text
        r = await complete(http, upload_id, SHA)
        assert r.status_code == 201, r.text
        got = await http.get(FILE_URL)
        assert got.status_code == 200
        assert got.content == DATA


# --- offsets and concurrency ----------------------------------------------------------------


async def test_wrong_offset_conflict(client: httpx.AsyncClient, project: str) -> None:
    upload_id = await start(client)
    assert (await patch(client, upload_id, 0, DATA[:CUT])).status_code == 200
    for wrong in (0, CUT - 1, CUT + 1, len(DATA)):
        r = await patch(client, upload_id, wrong, DATA[wrong : wrong + 1000] or b"x")
        assert r.status_code == 409, (wrong, r.text)
        assert r.json()["error"]["code"] == "conflict"
        assert await offset_of(client, upload_id) == CUT
    for bad in ({"Upload-Offset": "-1"}, {"Upload-Offset": "abc"}, {"Content-Range": "x"}, {}):
        r = await client.patch(f"/api/v1/uploads/{upload_id}", content=b"x", headers=bad)
        assert r.status_code == 400, (bad, r.text)
    assert await offset_of(client, upload_id) == CUT
    assert (await patch(client, upload_id, CUT, DATA[CUT:])).status_code == 200
    assert (await complete(client, upload_id, SHA)).status_code == 201
    assert (await client.get(FILE_URL)).content == DATA


async def test_concurrent_chunks_at_one_offset(
    client: httpx.AsyncClient, project: str, app: FastAPI, settings: Settings
) -> None:
    upload_id = await start(client, size=len(DATA))
    assert (await patch(client, upload_id, 0, DATA[:CUT])).status_code == 200
    rest = DATA[CUT:]
    impostor = os.urandom(len(rest))  # same length, different bytes
    both_streaming = asyncio.Event()
    streaming = 0

    async def slow(data: bytes) -> AsyncIterator[bytes]:
        nonlocal streaming
        yield data[:1000]
        streaming += 1
        if streaming == 2:
            both_streaming.set()
        await asyncio.wait_for(both_streaming.wait(), 5)  # both are past the offset check
        for i in range(1000, len(data), 64 * 1024):
            yield data[i : i + 64 * 1024]

    first, second = await asyncio.gather(
        patch(client, upload_id, CUT, slow(rest)), patch(client, upload_id, CUT, slow(impostor))
    )
    statuses = sorted([first.status_code, second.status_code])
    assert statuses == [200, 409], (first.text, second.text)
    winner = rest if first.status_code == 200 else impostor
    expected = DATA[:CUT] + winner
    assert await offset_of(client, upload_id) == len(DATA)
    row, parts = await session_rows(app, upload_id)
    assert row is not None
    assert (row.parts, parts) == (2, 2)
    assert len(await parts_left(app, settings, upload_id)) == 2  # the loser's part is gone

    r = await complete(client, upload_id, hashlib.sha256(expected).hexdigest())
    assert r.status_code == 201, r.text
    got = await client.get(FILE_URL)
    assert got.content == expected


# --- failures leave nothing behind ----------------------------------------------------------


async def test_wrong_hash_stores_nothing(
    client: httpx.AsyncClient, project: str, app: FastAPI, settings: Settings
) -> None:
    upload_id = await start(client, size=len(DATA))
    assert (await patch(client, upload_id, 0, DATA)).status_code == 200
    assert len(await parts_left(app, settings, upload_id)) == 1
    r = await complete(client, upload_id, "0" * 64)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "checksum_mismatch"
    await assert_nothing_stored(client, SHA)
    assert (await client.get(f"/api/v1/uploads/{upload_id}")).status_code == 404
    assert await parts_left(app, settings, upload_id) == []
    assert await session_rows(app, upload_id) == (None, 0)
    if STACK != "production":
        staging = settings.data_dir / "blobs" / ".staging"
        assert list(staging.iterdir()) == []
    # A malformed hash is refused before anything happens.
    other = await start(client)
    r = await client.post(f"/api/v1/uploads/{other}/complete", json={"sha256": "abc"})
    assert r.status_code == 422


async def test_limits_and_refused_targets(client: httpx.AsyncClient, project: str) -> None:
    """Chunks past the declared size are 413, completion before all declared bytes
    is 400; read-only (the builtin proxy) and bad targets are refused at creation."""
    upload_id = await start(client, size=1000)
    r = await patch(client, upload_id, 0, DATA[:1001])
    assert r.status_code == 413, r.text
    assert await offset_of(client, upload_id) == 0
    assert (await patch(client, upload_id, 0, DATA[:600])).status_code == 200
    r = await patch(client, upload_id, 600, DATA[600:1500])
    assert r.status_code == 413, r.text
    assert await offset_of(client, upload_id) == 600

    # Completing before every declared byte arrived: 400, and the upload lives on.
    r = await complete(client, upload_id, hashlib.sha256(DATA[:1000]).hexdigest())
    assert r.status_code == 400, r.text
    assert await offset_of(client, upload_id) == 600
    assert (await patch(client, upload_id, 600, DATA[600:1000])).status_code == 200
    r = await complete(client, upload_id, hashlib.sha256(DATA[:1000]).hexdigest())
    assert r.status_code == 201, r.text
    assert (await client.get(FILE_URL)).content == DATA[:1000]

    # A declared size above the server's limit is refused at creation.
    r = await client.post("/api/v1/uploads", json={**TARGET, "size": 10**15})
    assert r.status_code == 413, r.text
    r = await client.post("/api/v1/uploads", json={**TARGET, "size": -1})
    assert r.status_code == 422, r.text

    # Targets refused before a byte is accepted: the builtin proxy is read-only.
    r = await client.post("/api/v1/uploads", json={**TARGET, "project": "proxy"})
    assert r.status_code == 403, r.text
    assert r.json()["error"]["code"] == "forbidden"
    r = await client.post("/api/v1/uploads", json={**TARGET, "project": "nope"})
    assert r.status_code == 404, r.text
    r = await client.post("/api/v1/uploads", json={**TARGET, "filename": "../x"})
    assert r.status_code == 400, r.text
    r = await client.post("/api/v1/uploads", json={"project": "p"})
    assert r.status_code == 422, r.text
    assert (await client.get(f"/api/v1/uploads/{'0' * 32}")).status_code == 404


async def test_abort(
    client: httpx.AsyncClient, project: str, app: FastAPI, settings: Settings
) -> None:
    upload_id = await start(client)
    assert (await patch(client, upload_id, 0, DATA[:CUT])).status_code == 200
    assert (await patch(client, upload_id, CUT, DATA[CUT:])).status_code == 200
    assert len(await parts_left(app, settings, upload_id)) == 2
    r = await client.delete(f"/api/v1/uploads/{upload_id}")
    assert r.status_code == 204
    assert r.content == b""
    assert (await client.get(f"/api/v1/uploads/{upload_id}")).status_code == 404
    assert (await client.delete(f"/api/v1/uploads/{upload_id}")).status_code == 404
    assert (await patch(client, upload_id, len(DATA), b"x")).status_code == 404
    assert (await complete(client, upload_id, SHA)).status_code == 404
    assert await parts_left(app, settings, upload_id) == []
    assert await session_rows(app, upload_id) == (None, 0)
    if STACK != "production":
        assert not (settings.data_dir / "blobs" / ".parts" / "uploads" / upload_id).exists()
    await assert_nothing_stored(client, SHA)


@pytest.mark.parametrize("settings", [{"upload_session_ttl": 1}], indirect=True)
async def test_abandoned_sessions_expire(
    client: httpx.AsyncClient, project: str, app: FastAPI, settings: Settings
) -> None:
    assert settings.upload_session_ttl == 1
    upload_id = await start(client)
    assert (await patch(client, upload_id, 0, DATA[:CUT])).status_code == 200
    assert len(await parts_left(app, settings, upload_id)) == 1
    await asyncio.sleep(1.5)
    assert (await client.get(f"/api/v1/uploads/{upload_id}")).status_code == 404
    assert (await patch(client, upload_id, CUT, DATA[CUT:])).status_code == 404
    # Expired but not yet collected: the bytes are still there, until expire() runs.
    row, parts = await session_rows(app, upload_id)
    assert row is not None
    assert parts == 1
    assert await upload_sessions.expire(app.state.db, app.state.storage) == 1
    assert await parts_left(app, settings, upload_id) == []
    assert await session_rows(app, upload_id) == (None, 0)
    if STACK != "production":
        assert not (settings.data_dir / "blobs" / ".parts" / "uploads" / upload_id).exists()
    assert await upload_sessions.expire(app.state.db, app.state.storage) == 0
