"""The ``orchard`` command, run as a subprocess against the stack under test.

``serve`` itself is exercised by the ``live_server`` fixture.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import boto3
import httpx

from orchard.settings import Settings
from orchard.storage.base import blob_key
from tests.conftest import LiveServer, free_port, server_env
from tests.integration.test_failures import StorageOutage
from tests.support import bearer, make_token

API = "/api/v1"
MiB = 1024 * 1024


def orchard(
    settings: Settings, *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchard.cli.main", *args],
        env=server_env(settings),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


async def orchard_async(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI without blocking the event loop of the in-process app."""
    return await anyio.to_thread.run_sync(lambda: orchard(settings, *args))


def file_url(version: str, filename: str) -> str:
    return f"{API}/project/p/packages/pkg/versions/{version}/files/{filename}"


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


def write_raw_blob(settings: Settings, sha256: str, data: bytes) -> None:
    """Overwrite a stored blob behind Orchard's back."""
    if settings.storage_url is None:
        path = settings.data_dir / "blobs" / blob_key(sha256)
        assert path.is_file()
        path.write_bytes(data)
        return
    bucket, _, prefix = settings.storage_url.removeprefix("s3://").partition("/")
    s3 = boto3.client("s3", endpoint_url=settings.s3_endpoint_url)
    try:
        s3.put_object(Bucket=bucket, Key=f"{prefix.strip('/')}/{blob_key(sha256)}", Body=data)
    finally:
        s3.close()


# --- db upgrade ---------------------------------------------------------------------------


def test_db_upgrade_on_a_fresh_data_dir(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "fresh")
    result = orchard(settings, "db", "upgrade")
    assert result.returncode == 0, result.stderr
    assert "database upgraded to head" in result.stdout
    with sqlite3.connect(tmp_path / "fresh" / "orchard.db") as conn:
        tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master")}
    assert {"artifacts", "projects", "packages", "versions", "files"} <= tables
    assert {"files_ref_insert", "files_ref_delete", "files_ref_update"} <= tables  # triggers


# --- gc and fsck --------------------------------------------------------------------------


async def test_gc_and_fsck_commands(
    client: httpx.AsyncClient, app: Any, settings: Settings
) -> None:
    client.headers.update(bearer(await make_token(app, "admin")))
    assert (await client.post(f"{API}/projects", json={"name": "p"})).status_code == 201
    kept = os.urandom(3000)
    dropped = os.urandom(2000)
    r = await client.put(file_url("1.0", "kept.bin"), content=kept)
    kept_sha = r.json()["sha256"]
    r = await client.put(file_url("2.0", "dropped.bin"), content=dropped)
    dropped_sha = r.json()["sha256"]
    assert (await client.delete(f"{API}/project/p/packages/pkg/versions/2.0")).status_code == 204
    storage = app.state.storage
    staged = await storage.stage(_one(b"orphaned bytes"))
    await storage.commit(staged)
    orphan_sha = staged.info.sha256

    dry = await orchard_async(settings, "gc", "--dry-run", "--grace", "0")
    assert dry.returncode == 0, dry.stderr
    assert f"would free {dropped_sha} 2000" in dry.stdout
    assert f"would free orphan {orphan_sha} {len(b'orphaned bytes')}" in dry.stdout
    assert "would free 1 artifacts and 1 orphaned blobs" in dry.stdout
    assert kept_sha not in dry.stdout
    assert await storage.exists(dropped_sha)
    assert await storage.exists(orphan_sha)

    done = await orchard_async(settings, "gc", "--grace", "0")
    assert done.returncode == 0, done.stderr
    assert f"freed {dropped_sha} 2000" in done.stdout
    assert f"freed orphan {orphan_sha}" in done.stdout
    assert f"({2000 + len(b'orphaned bytes')} bytes)" in done.stdout
    assert not await storage.exists(dropped_sha)
    assert not await storage.exists(orphan_sha)
    assert (await client.get(file_url("1.0", "kept.bin"))).content == kept

    clean = await orchard_async(settings, "fsck")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "checked 1 blobs: 0 missing, 0 corrupt, 0 orphaned" in clean.stdout

    # Flip the first byte (writing a fixed one left the blob intact whenever
    # the random bytes happened to start with it: one run in 256).
    write_raw_blob(settings, kept_sha, bytes([kept[0] ^ 0xFF]) + kept[1:])
    broken = await orchard_async(settings, "fsck")
    assert broken.returncode == 1, broken.stdout + broken.stderr
    assert f"corrupt {kept_sha}" in broken.stdout
    assert "1 corrupt" in broken.stdout


# --- upload and download against a live server --------------------------------------------


async def test_upload_and_download(
    live_server: LiveServer, app: Any, settings: Settings, tmp_path: Path
) -> None:
    token = await make_token(app, "admin")
    async with httpx.AsyncClient(base_url=live_server.url, headers=bearer(token)) as http:
        assert (await http.post(f"{API}/projects", json={"name": "p"})).status_code == 201
    remote = ("--url", live_server.url, "--token", token)
    big = tmp_path / "big.bin"
    data = os.urandom(5 * MiB + 123)
    big.write_bytes(data)
    sha = hashlib.sha256(data).hexdigest()

    up = await orchard_async(settings, "upload", "p", "pkg", "1.0", str(big), *remote)
    assert up.returncode == 0, up.stderr
    assert f"{sha}  big.bin  {len(data)} bytes" in up.stdout
    assert "deduplicated" not in up.stdout

    # An interrupted earlier download left a partial file: download resumes it.
    out = tmp_path / "out" / "big.bin"
    out.parent.mkdir()
    out.with_name("big.bin.part").write_bytes(data[:MiB])
    down = await orchard_async(
        settings, "download", "p", "pkg", "1.0", "big.bin", "-o", str(out), *remote
    )
    assert down.returncode == 0, down.stderr
    assert out.read_bytes() == data
    assert sha in down.stdout
    assert not out.with_name("big.bin.part").exists()

    # The same bytes elsewhere are stored once, but the answer does not say so.
    elsewhere = await orchard_async(settings, "upload", "p", "pkg", "1.1", str(big), *remote)
    assert elsewhere.returncode == 0, elsewhere.stderr
    assert "already" not in elsewhere.stdout
    again = await orchard_async(settings, "upload", "p", "pkg", "1.1", str(big), *remote)
    assert again.returncode == 0, again.stderr
    assert "(already there, same content)" in again.stdout

    chunked = tmp_path / "chunked.bin"
    chunked_data = os.urandom(3 * MiB + 7)
    chunked.write_bytes(chunked_data)
    resumable = await orchard_async(
        settings, "upload", "p", "pkg", "2.0", str(chunked),
        "--resumable", "--chunk-size", str(512 * 1024), *remote,
    )  # fmt: skip
    assert resumable.returncode == 0, resumable.stderr
    assert hashlib.sha256(chunked_data).hexdigest() in resumable.stdout
    # A partial file that is already complete (the server answers the range
    # request with 416): download starts over instead of saving the error.
    chunked_out = tmp_path / "out" / "chunked.bin"
    chunked_out.with_name("chunked.bin.part").write_bytes(chunked_data)
    down = await orchard_async(
        settings, "download", "p", "pkg", "2.0", "chunked.bin", "-o", str(chunked_out), *remote
    )
    assert down.returncode == 0, down.stderr
    assert chunked_out.read_bytes() == chunked_data

    # The server now serves bytes that don't match the checksum it announces:
    # download refuses them and leaves no file behind.
    corrupted = bytearray(data)
    corrupted[MiB] ^= 0x01
    write_raw_blob(settings, sha, bytes(corrupted))
    bad_out = tmp_path / "bad.bin"
    bad = await orchard_async(
        settings, "download", "p", "pkg", "1.0", "big.bin", "-o", str(bad_out), *remote
    )
    assert bad.returncode == 1
    assert "checksum mismatch" in bad.stderr
    assert not bad_out.exists()
    assert not bad_out.with_name("bad.bin.part").exists()

    # Storage goes away: a resumable upload gives up after its retries with an
    # error instead of retrying forever.
    outage = StorageOutage(settings)
    await outage.start()
    try:
        stuck = await orchard_async(
            settings, "upload", "p", "pkg", "3.0", str(chunked), "--resumable",
            "--chunk-size", str(MiB), "--retries", "1", *remote,
        )  # fmt: skip
    finally:
        await outage.stop()
    assert stuck.returncode == 1, stuck.stdout + stuck.stderr
    assert "error:" in stuck.stderr


async def test_operator_commands_name_an_unreachable_database(tmp_path: Path) -> None:
    url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/orchard"
    settings = Settings(data_dir=tmp_path, database_url=url)
    results: list[subprocess.CompletedProcess[str]] = []

    async def run(*args: str) -> None:
        results.append(await orchard_async(settings, *args))

    async with anyio.create_task_group() as tg:  # two CLI start-ups at once
        tg.start_soon(run, "gc", "--dry-run")
        tg.start_soon(run, "db", "upgrade")
    for result in results:
        assert result.returncode == 2, result.stderr
        assert "ORCHARD_DATABASE_URL" in result.stderr
        assert "Traceback" not in result.stderr
