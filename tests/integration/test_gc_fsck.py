"""Garbage collection and fsck against the stack under test (core functions)."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import AsyncIterator
from typing import Any

import boto3
import httpx
import pytest
from sqlalchemy import select

from orchard.core.fsck import check
from orchard.core.gc import collect
from orchard.db.models import Artifact
from orchard.settings import Settings
from orchard.storage.base import blob_key
from tests.support import bearer, make_token

API = "/api/v1"
HOUR = 3600


def file_url(version: str, filename: str) -> str:
    return f"{API}/project/p/packages/pkg/versions/{version}/files/{filename}"


@pytest.fixture(autouse=True)
async def _project(client: httpx.AsyncClient, app: Any) -> None:
    client.headers.update(bearer(await make_token(app, "admin")))
    assert (await client.post(f"{API}/projects", json={"name": "p"})).status_code == 201


async def upload(client: httpx.AsyncClient, version: str, data: bytes, name: str = "f.bin") -> str:
    r = await client.put(file_url(version, name), content=data)
    assert r.status_code == 201, r.text
    return str(r.json()["sha256"])


async def drop_version(client: httpx.AsyncClient, version: str) -> None:
    r = await client.delete(f"{API}/project/p/packages/pkg/versions/{version}")
    assert r.status_code == 204, r.text


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def put_orphan(app: Any, data: bytes) -> str:
    """A blob in storage without an artifact row (as after a crashed upload)."""
    staged = await app.state.storage.stage(_one(data))
    await app.state.storage.commit(staged)
    return staged.info.sha256


async def row(app: Any, sha256: str) -> Artifact | None:
    async with app.state.db.session() as session:
        found: Artifact | None = await session.scalar(select(Artifact).where(Artifact.id == sha256))
        return found


def write_raw_blob(settings: Settings, sha256: str, data: bytes) -> None:
    """Overwrite a stored blob behind Orchard's back (corruption)."""
    if settings.storage_url is None:
        path = settings.data_dir / "blobs" / "sha256" / sha256[:2] / sha256[2:4] / sha256
        assert path.is_file()
        path.write_bytes(data)
        return
    bucket, _, prefix = settings.storage_url.removeprefix("s3://").partition("/")
    s3 = boto3.client("s3", endpoint_url=settings.s3_endpoint_url)
    try:
        s3.put_object(Bucket=bucket, Key=f"{prefix.strip('/')}/{blob_key(sha256)}", Body=data)
    finally:
        s3.close()


def age_blob(settings: Settings, sha256: str, seconds: int) -> bool:
    """Make a blob look ``seconds`` old; False where storage can't (S3)."""
    if settings.storage_url is not None:
        return False
    path = settings.data_dir / "blobs" / blob_key(sha256)
    past = time.time() - seconds
    os.utime(path, (past, past))
    return True


async def test_grace_keeps_young_unreferenced_artifacts(
    client: httpx.AsyncClient, app: Any
) -> None:
    data = os.urandom(5000)
    sha = await upload(client, "1.0", data)
    await drop_version(client, "1.0")
    artifact = await row(app, sha)
    assert artifact is not None
    assert artifact.ref_count == 0

    report = await collect(app.state.db, app.state.storage, grace=HOUR)

    assert report.freed == []
    assert report.freed_bytes == 0
    assert await row(app, sha) is not None
    assert await app.state.storage.exists(sha)


async def test_grace_zero_frees_unreferenced_and_never_referenced(
    client: httpx.AsyncClient, app: Any
) -> None:
    kept = os.urandom(3000)
    gone_a, gone_b = os.urandom(4000), os.urandom(7000)
    kept_sha = await upload(client, "1.0", kept)
    # The same bytes in a version that goes: still referenced by 1.0.
    await upload(client, "2.0", kept)
    sha_a = await upload(client, "2.0", gone_a, "a.bin")
    sha_b = await upload(client, "3.0", gone_b)
    await drop_version(client, "2.0")
    await drop_version(client, "3.0")

    report = await collect(app.state.db, app.state.storage, grace=0)

    assert sorted(report.freed) == sorted([(sha_a, 4000), (sha_b, 7000)])
    assert report.orphans == []
    assert report.freed_bytes == 11000
    assert not report.dry_run
    for sha in (sha_a, sha_b):
        assert await row(app, sha) is None
        assert not await app.state.storage.exists(sha)
    kept_row = await row(app, kept_sha)
    assert kept_row is not None
    assert kept_row.ref_count == 1
    got = await client.get(file_url("1.0", "f.bin"))
    assert got.status_code == 200
    assert got.content == kept
    # A second run finds nothing more.
    again = await collect(app.state.db, app.state.storage, grace=0)
    assert again.freed == [] and again.orphans == []


async def test_dry_run_deletes_nothing(client: httpx.AsyncClient, app: Any) -> None:
    data = os.urandom(2500)
    sha = await upload(client, "1.0", data)
    await drop_version(client, "1.0")
    orphan = await put_orphan(app, b"orphan bytes for the dry run")

    report = await collect(app.state.db, app.state.storage, grace=0, dry_run=True)

    assert report.dry_run
    assert report.freed == [(sha, 2500)]
    assert report.orphans == [(orphan, len(b"orphan bytes for the dry run"))]
    assert report.freed_bytes == 2500 + len(b"orphan bytes for the dry run")
    assert await row(app, sha) is not None
    assert await app.state.storage.exists(sha)
    assert await app.state.storage.exists(orphan)


async def test_orphaned_blobs_are_removed_once_older_than_the_grace(
    app: Any, settings: Settings
) -> None:
    data = b"a blob nobody committed a row for"
    orphan = await put_orphan(app, data)

    young = await collect(app.state.db, app.state.storage, grace=HOUR)
    assert young.orphans == []
    assert await app.state.storage.exists(orphan)

    grace = HOUR if age_blob(settings, orphan, 2 * HOUR) else 0
    report = await collect(app.state.db, app.state.storage, grace=grace)

    assert report.orphans == [(orphan, len(data))]
    assert report.freed == []
    assert report.freed_bytes == len(data)
    assert not await app.state.storage.exists(orphan)
    assert await row(app, orphan) is None  # gc's claim on the id left nothing behind


async def test_fsck_reports_corrupt_missing_and_orphaned(
    client: httpx.AsyncClient, app: Any, settings: Settings
) -> None:
    good = os.urandom(4096)
    corrupt_data = os.urandom(4096)
    good_sha = await upload(client, "1.0", good)
    corrupt_sha = await upload(client, "1.0", corrupt_data, "corrupt.bin")
    missing_sha = await upload(client, "1.0", os.urandom(100), "missing.bin")
    clean = await check(app.state.db, app.state.storage)
    assert clean.ok
    assert clean.checked == 3

    flipped = bytearray(corrupt_data)
    flipped[100] ^= 0xFF
    write_raw_blob(settings, corrupt_sha, bytes(flipped))
    await app.state.storage.delete(missing_sha)
    orphan_sha = await put_orphan(app, b"nobody knows me")
    seen: list[str] = []

    report = await check(app.state.db, app.state.storage, progress=seen.append)

    assert not report.ok
    assert report.corrupt == [corrupt_sha]
    assert report.missing == [missing_sha]
    assert report.orphaned == [orphan_sha]
    assert report.checked == 2
    assert sorted(seen) == sorted([good_sha, corrupt_sha])


async def test_fsck_notices_a_truncated_blob(
    client: httpx.AsyncClient, app: Any, settings: Settings
) -> None:
    data = os.urandom(10_000)
    sha = await upload(client, "1.0", data)
    write_raw_blob(settings, sha, data[:5000])
    report = await check(app.state.db, app.state.storage)
    assert report.corrupt == [sha]
    assert hashlib.sha256(data).hexdigest() == sha
