"""Backends failing under a running server, and at start-up.

Failures here are real, not simulated: the blob directory is replaced by a
regular file (which stops root too), the S3 bucket is deleted, the database
is dropped or its directory replaced, ports are closed. Orchard must answer
503 with a JSON error, never serve or reference half-written bytes, report
the failure in /health, and recover when the backend comes back.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio.to_thread
import httpx
import pytest
from sqlalchemy import func, select

from orchard.app import create_app
from orchard.core.gc import collect
from orchard.db.migrate import upgrade
from orchard.db.models import Artifact, File
from orchard.errors import ConfigurationError
from orchard.settings import Settings
from tests.conftest import PG_ADMIN_URL, STACK, free_port
from tests.fakes.s3server import create_bucket, delete_bucket
from tests.support import bearer, make_token

API = "/api/v1"
embedded_only = pytest.mark.skipif(STACK != "embedded", reason="SQLite and blobs on disk")
production_only = pytest.mark.skipif(STACK != "production", reason="PostgreSQL and S3")


def file_url(version: str, filename: str = "f.bin") -> str:
    return f"{API}/project/p/packages/pkg/versions/{version}/files/{filename}"


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    """An app of its own on ``settings``, and a client for it."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield app, c


async def sign_in(app: Any, client: httpx.AsyncClient) -> None:
    client.headers.update(bearer(await make_token(app, "admin")))


async def make_project(client: httpx.AsyncClient) -> None:
    assert (await client.post(f"{API}/projects", json={"name": "p"})).status_code == 201


def assert_json_error(response: httpx.Response, status: int = 503) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] and error["message"]


async def assert_consistent(app: Any) -> None:
    """ref_count matches the File rows and every referenced blob is stored."""
    async with app.state.db.session() as s:
        grouped = select(File.artifact_id, func.count()).group_by(File.artifact_id)
        counted = {sha: n for sha, n in await s.execute(grouped)}
        rows = list(await s.execute(select(Artifact.id, Artifact.ref_count)))
    for sha, ref_count in rows:
        assert ref_count == counted.get(sha, 0), sha
        if ref_count:
            assert await app.state.storage.exists(sha), f"{sha} is referenced but not stored"


# --- storage ------------------------------------------------------------------------------


class StorageOutage:
    """Takes the stack's blob storage away for real, and brings it back."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def start(self) -> None:
        if self.settings.storage_url is None:
            root = self.settings.data_dir / "blobs"
            root.rename(root.with_name("blobs.away"))
            root.write_bytes(b"not a directory")  # stops root as well as anyone
        else:
            bucket = self.settings.storage_url.removeprefix("s3://").partition("/")[0]
            endpoint = self.settings.s3_endpoint_url
            assert endpoint is not None
            await anyio.to_thread.run_sync(delete_bucket, endpoint, bucket)

    async def stop(self) -> None:
        if self.settings.storage_url is None:
            root = self.settings.data_dir / "blobs"
            root.unlink()
            root.with_name("blobs.away").rename(root)
        else:
            bucket = self.settings.storage_url.removeprefix("s3://").partition("/")[0]
            endpoint = self.settings.s3_endpoint_url
            assert endpoint is not None
            await anyio.to_thread.run_sync(create_bucket, endpoint, bucket)


async def test_storage_gone_mid_upload_is_503_and_nothing_is_referenced(
    client: httpx.AsyncClient, app: Any, settings: Settings
) -> None:
    await sign_in(app, client)
    await make_project(client)
    outage = StorageOutage(settings)
    chunk = os.urandom(256 * 1024)

    async def body() -> AsyncIterator[bytes]:
        yield chunk
        await outage.start()  # the storage goes while the body is still arriving
        yield chunk

    r = await client.put(file_url("1.0"), content=body())
    assert_json_error(r)
    assert r.json()["error"]["code"].startswith(("storage", "unavailable"))

    health = await client.get("/health")
    assert health.status_code == 503
    assert health.json()["storage"]["status"] == "down"
    assert health.json()["database"]["status"] == "up"
    assert_json_error(await client.put(file_url("1.1"), content=b"while down"))
    # Nothing refers to the bytes that never made it.
    assert (await client.get(file_url("1.0"))).status_code == 404
    assert (await client.get(file_url("1.1"))).status_code == 404

    await outage.stop()
    await assert_consistent(app)
    assert (await client.get("/health")).status_code == 200
    ok = await client.put(file_url("1.0"), content=chunk + chunk)
    assert ok.status_code == 201, ok.text
    got = await client.get(file_url("1.0"))
    assert got.status_code == 200
    assert got.content == chunk + chunk
    await assert_consistent(app)


@embedded_only
async def test_failed_commit_keeps_its_error_type_and_leaves_no_staged_file(
    client: httpx.AsyncClient, app: Any, settings: Settings
) -> None:
    await sign_in(app, client)
    await make_project(client)
    outage = StorageOutage(settings)

    async def body() -> AsyncIterator[bytes]:
        yield b"first half"
        await outage.start()
        yield b"second half"

    r = await client.put(file_url("1.0"), content=body())
    await outage.stop()
    assert r.status_code == 503
    assert r.json()["error"]["code"] == "storage_upload_error"
    # The staged copy could not be removed while storage was away; gc sweeps
    # staged copies that nobody has written to for an hour.
    staging = settings.data_dir / "blobs" / ".staging"
    leftovers = list(staging.iterdir())
    old = time.time() - 2 * 3600
    for path in leftovers:
        os.utime(path, (old, old))
    report = await collect(app.state.db, app.state.storage, grace=0)
    assert report.purged_staging == len(leftovers)
    assert list(staging.iterdir()) == []


async def test_missing_blob_is_503_never_a_truncated_200(
    client: httpx.AsyncClient, app: Any
) -> None:
    await sign_in(app, client)
    await make_project(client)
    data = os.urandom(100_000)
    r = await client.put(file_url("1.0"), content=data)
    assert r.status_code == 201, r.text
    sha = r.json()["sha256"]
    await app.state.storage.delete(sha)

    assert_json_error(await client.get(file_url("1.0")))
    assert_json_error(await client.get(file_url("1.0"), headers={"Range": "bytes=10-99"}))
    assert_json_error(await client.get(f"{API}/artifacts/{sha}/content"))
    head = await client.head(file_url("1.0"))
    assert head.status_code == 503


# --- database ------------------------------------------------------------------------------


@embedded_only
async def test_sqlite_directory_replaced_is_503_then_recovers(
    stack_settings: Settings, tmp_path: Path
) -> None:
    db_dir = tmp_path / "db"
    db_dir.mkdir()
    shutil.copy(stack_settings.data_dir / "orchard.db", db_dir / "orchard.db")
    settings = stack_settings.model_copy(
        update={"database_url": f"sqlite:///{db_dir / 'orchard.db'}"}
    )
    async with running(settings) as (app, client):
        await sign_in(app, client)
        await make_project(client)
        assert (await client.put(file_url("1.0"), content=b"before")).status_code == 201

        db_dir.rename(tmp_path / "db.away")
        db_dir.write_bytes(b"not a directory")
        try:
            assert_json_error(await client.get(f"{API}/projects"))
            assert_json_error(await client.get(file_url("1.0")))
            assert_json_error(await client.put(file_url("2.0"), content=b"lost?"))
            health = await client.get("/health")
            assert health.status_code == 503
            assert health.json()["database"]["status"] == "down"
            assert health.json()["status"] == "unhealthy"
        finally:
            db_dir.unlink()
            (tmp_path / "db.away").rename(db_dir)

        # Back: nothing was written to a ghost of the old file, and it serves again.
        assert (await client.get("/health")).status_code == 200
        assert (await client.get(file_url("1.0"))).content == b"before"
        assert (await client.get(file_url("2.0"))).status_code == 404


@production_only
async def test_postgres_database_dropped_is_503(stack_settings: Settings) -> None:
    import psycopg

    name = f"orchard_gone_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
        settings = stack_settings.model_copy(update={"database_url": f"{base}/{name}"})
        await anyio.to_thread.run_sync(upgrade, settings)
        async with running(settings) as (app, client):
            await sign_in(app, client)
            await make_project(client)
            assert (await client.put(file_url("1.0"), content=b"before")).status_code == 201

            def drop() -> None:
                with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
                    conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')

            await anyio.to_thread.run_sync(drop)

            assert_json_error(await client.get(f"{API}/projects"))
            assert_json_error(await client.get(file_url("1.0")))
            assert_json_error(await client.put(file_url("2.0"), content=b"after"))
            health = await client.get("/health")
            assert health.status_code == 503
            assert health.json()["database"]["status"] == "down"
            assert health.json()["storage"]["status"] == "up"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- start-up -----------------------------------------------------------------------------


async def start_fails(settings: Settings) -> str:
    app = create_app(settings)
    with pytest.raises(ConfigurationError) as info:
        async with app.router.lifespan_context(app):
            pass
    return info.value.message


async def test_unreachable_database_stops_start_up(tmp_path: Path) -> None:
    url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/orchard"
    message = await start_fails(Settings(data_dir=tmp_path, database_url=url))
    assert "ORCHARD_DATABASE_URL" in message


async def test_malformed_database_url_stops_start_up(tmp_path: Path) -> None:
    message = await start_fails(Settings(data_dir=tmp_path, database_url="not a url at all"))
    assert "ORCHARD_DATABASE_URL" in message


async def test_s3_without_credentials_stops_start_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    settings = Settings(
        data_dir=tmp_path,
        storage_url="s3://orchard-blobs/prefix",
        s3_endpoint_url=f"http://127.0.0.1:{free_port()}",
    )
    message = await start_fails(settings)
    assert "AWS_ACCESS_KEY_ID" in message


async def test_unknown_storage_scheme_stops_start_up(tmp_path: Path) -> None:
    message = await start_fails(Settings(data_dir=tmp_path, storage_url="ftp://example/blobs"))
    assert "ORCHARD_STORAGE_URL" in message


async def test_redis_down_is_not_fatal(stack_settings: Settings) -> None:
    settings = stack_settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{free_port()}/0"})
    async with running(settings) as (app, client):
        health = await client.get("/health")
        assert health.status_code == 200
        body = health.json()
        assert body["status"] == "degraded"
        assert body["cache"]["connected"] is False
        assert body["database"]["status"] == "up"
        assert body["storage"]["status"] == "up"

        await sign_in(app, client)
        await make_project(client)
        data = os.urandom(50_000)
        r = await client.put(file_url("1.0"), content=data)
        assert r.status_code == 201, r.text
        got = await client.get(file_url("1.0"))
        assert got.status_code == 200
        assert got.content == data
        listed = await client.get(f"{API}/project/p/packages/pkg/versions")
        assert listed.status_code == 200
        assert [v["version"] for v in listed.json()] == ["1.0"]
