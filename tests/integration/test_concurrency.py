"""Concurrent uploads, deletes and gc on the stack under test.

The invariants (DESIGN.md §4): one blob per content, ``ref_count`` equal to
the number of File rows (kept by triggers alone), immutable paths, and gc
never deleting a blob that something references, whatever the interleaving.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import time
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from orchard.core import artifacts, catalog
from orchard.core.audit import Actor
from orchard.core.fsck import check
from orchard.core.gc import collect
from orchard.db.models import Artifact, File
from orchard.settings import Settings
from tests.support import bearer, make_token

API = "/api/v1"
N = 64


def file_path(version: str, filename: str, project: str = "p", package: str = "pkg") -> str:
    return f"{API}/project/{project}/packages/{package}/versions/{version}/files/{filename}"


@pytest.fixture(autouse=True)
async def _writer(client: httpx.AsyncClient, app: Any) -> None:
    """Every request of these tests carries a token of the first admin."""
    client.headers.update(bearer(await make_token(app, "admin")))


async def make_project(client: httpx.AsyncClient, name: str = "p") -> None:
    r = await client.post(f"{API}/projects", json={"name": name})
    assert r.status_code == 201, r.text


async def put(
    client: httpx.AsyncClient, version: str, filename: str, data: bytes
) -> httpx.Response:
    return await client.put(file_path(version, filename), content=data)


async def blobs_in_storage(app: Any) -> dict[str, int]:
    return {b.sha256: b.size async for b in app.state.storage.list()}


async def ref_counts(app: Any) -> dict[str, tuple[int, int]]:
    """sha256 → (ref_count column, number of File rows pointing at it)."""
    async with app.state.db.session() as s:
        grouped = select(File.artifact_id, func.count()).group_by(File.artifact_id)
        counted = {sha: n for sha, n in await s.execute(grouped)}
        rows = list(await s.execute(select(Artifact.id, Artifact.ref_count)))
    return {sha: (rc, counted.get(sha, 0)) for sha, rc in rows}


def assert_no_staging_leftovers(settings: Settings) -> None:
    staging = settings.data_dir / "blobs" / ".staging"
    if settings.storage_url is None and staging.exists():
        assert list(staging.iterdir()) == []


async def test_same_bytes_to_many_versions(
    client: httpx.AsyncClient, app: Any, settings: Settings
) -> None:
    await make_project(client)
    data = os.urandom(64 * 1024)
    sha = hashlib.sha256(data).hexdigest()

    responses = await asyncio.gather(*(put(client, f"1.0.{i}", "same.bin", data) for i in range(N)))

    assert [r.status_code for r in responses] == [201] * N, [r.text for r in responses[:3]]
    assert {r.json()["sha256"] for r in responses} == {sha}
    # Exactly one request stored the bytes; all others were deduplicated (the
    # answers do not say so, issue 15: the audit log does).
    audit = await client.get(f"{API}/audit", params={"action": "file.upload", "limit": 1000})
    assert sum(not e["detail"]["deduplicated"] for e in audit.json()) == 1
    detail = (await client.get(f"{API}/artifacts/{sha}")).json()
    assert detail["ref_count"] == N
    assert len(detail["references"]) == N
    assert await blobs_in_storage(app) == {sha: len(data)}
    assert await ref_counts(app) == {sha: (N, N)}
    assert_no_staging_leftovers(settings)
    for i in (0, N // 2, N - 1):
        got = await client.get(file_path(f"1.0.{i}", "same.bin"))
        assert got.status_code == 200
        assert got.content == data


async def test_same_bytes_to_the_same_path(
    client: httpx.AsyncClient, app: Any, settings: Settings
) -> None:
    await make_project(client)
    # The version exists already, so that no request waits on creating it and
    # the racers really meet at the file row.
    assert (await put(client, "1.0", "other.txt", b"other")).status_code == 201
    data = os.urandom(64 * 1024)
    sha = hashlib.sha256(data).hexdigest()

    responses = await asyncio.gather(*(put(client, "1.0", "same.bin", data) for _ in range(N)))

    codes = sorted(r.status_code for r in responses)
    assert codes == [200] * (N - 1) + [201], [r.text for r in responses if r.status_code >= 300]
    assert sum(r.json()["created"] for r in responses) == 1
    assert {r.json()["sha256"] for r in responses} == {sha}
    detail = (await client.get(f"{API}/artifacts/{sha}")).json()
    assert detail["ref_count"] == 1
    assert len(detail["references"]) == 1
    counts = await ref_counts(app)
    assert counts[sha] == (1, 1)
    assert all(rc == files for rc, files in counts.values())
    blobs = await blobs_in_storage(app)
    assert blobs[sha] == len(data)
    assert len(blobs) == 2  # same.bin and other.txt
    assert_no_staging_leftovers(settings)
    got = await client.get(file_path("1.0", "same.bin"))
    assert got.content == data


async def test_different_bytes_to_the_same_path(
    client: httpx.AsyncClient, app: Any, settings: Settings
) -> None:
    await make_project(client)
    assert (await put(client, "1.0", "other.txt", b"other")).status_code == 201
    racers = 24
    payloads = [os.urandom(32 * 1024) for _ in range(racers)]

    responses = await asyncio.gather(*(put(client, "1.0", "race.bin", d) for d in payloads))

    codes = [r.status_code for r in responses]
    unexpected = [r.text for r in responses if r.status_code not in (201, 409)]
    assert sorted(codes) == [201] + [409] * (racers - 1), unexpected
    winner = payloads[codes.index(201)]
    winner_sha = hashlib.sha256(winner).hexdigest()
    for r in responses:
        if r.status_code == 409:
            assert r.json()["error"]["code"] == "conflict"
    got = await client.get(file_path("1.0", "race.bin"))
    assert got.status_code == 200
    assert got.content == winner
    assert got.headers["x-checksum-sha256"] == winner_sha

    # Losers never became artifacts; at most they left orphaned blobs (an upload
    # that lost the race after storing), which gc removes.
    counts = await ref_counts(app)
    assert counts[winner_sha] == (1, 1)
    assert len(counts) == 2
    await collect(app.state.db, app.state.storage, grace=0)
    blobs = await blobs_in_storage(app)
    assert set(blobs) == set(counts)
    assert_no_staging_leftovers(settings)
    report = await check(app.state.db, app.state.storage)
    assert report.ok, report
    got = await client.get(file_path("1.0", "race.bin"))
    assert got.content == winner


async def test_upload_delete_and_gc_interleaved(client: httpx.AsyncClient, app: Any) -> None:
    """Uploads that reuse content whose last reference is being deleted, while
    gc runs with no grace: no referenced blob may ever be lost."""
    await make_project(client)
    rng = random.Random(20240611)
    payloads = [rng.randbytes(32 * 1024 + i) for i in range(6)]
    expected: dict[str, bytes] = {}  # version → bytes, for versions that must survive
    deadline = time.monotonic() + 25
    rounds = 0

    while rounds < 2 and time.monotonic() < deadline:
        rounds += 1
        old = [f"{rounds}.old.{i}" for i in range(12)]
        new = [f"{rounds}.new.{i}" for i in range(12)]
        for i, version in enumerate(old):
            r = await put(client, version, "f.bin", payloads[i % len(payloads)])
            assert r.status_code == 201, r.text
        stop = asyncio.Event()
        gc_runs = 0

        async def gc_loop(stop: asyncio.Event) -> None:
            nonlocal gc_runs
            while not stop.is_set() and gc_runs < 40:
                await collect(app.state.db, app.state.storage, grace=0)
                gc_runs += 1
                await asyncio.sleep(0)

        async def upload(version: str, data: bytes) -> None:
            r = await put(client, version, "f.bin", data)
            assert r.status_code == 201, r.text
            expected[version] = data

        async def delete(version: str) -> None:
            r = await client.delete(f"{API}/project/p/packages/pkg/versions/{version}")
            assert r.status_code == 204, r.text

        ops: list[Any] = [upload(v, payloads[(i + 1) % len(payloads)]) for i, v in enumerate(new)]
        ops += [delete(v) for v in old]
        rng.shuffle(ops)
        gc_task = asyncio.create_task(gc_loop(stop))
        try:
            await asyncio.gather(*ops)
        finally:
            stop.set()
            await gc_task
        assert gc_runs >= 1

        # Every surviving file downloads with its exact bytes.
        for version, data in expected.items():
            got = await client.get(file_path(version, "f.bin"))
            assert got.status_code == 200, (version, got.text)
            assert got.content == data, version
        for version in old:
            got = await client.get(file_path(version, "f.bin"))
            assert got.status_code == 404

        counts = await ref_counts(app)
        assert all(rc == files for rc, files in counts.values()), counts
        blobs = await blobs_in_storage(app)
        for sha, (rc, _) in counts.items():
            if rc > 0:
                assert sha in blobs, f"referenced artifact {sha} lost its blob"

    # Once quiet, gc leaves exactly the referenced artifacts and fsck is clean.
    await collect(app.state.db, app.state.storage, grace=0)
    counts = await ref_counts(app)
    assert all(rc > 0 for rc, _ in counts.values())
    assert set(await blobs_in_storage(app)) == set(counts)
    report = await check(app.state.db, app.state.storage)
    assert report.ok, report
    used = {hashlib.sha256(d).hexdigest() for d in expected.values()}
    assert set(counts) == used


async def _chunks(data: bytes) -> Any:
    yield data


async def test_gc_during_an_uncommitted_upload_keeps_the_blob(
    client: httpx.AsyncClient, app: Any
) -> None:
    """The narrowest window: an upload has put its blob in place and inserted
    (not committed) the artifact row when gc lists storage. To gc the blob
    looks orphaned; deleting it would leave the committed file without bytes."""
    await make_project(client)
    db, storage = app.state.db, app.state.storage
    data = os.urandom(20_000)
    staged = await storage.stage(_chunks(data))
    async with db.transaction() as session:
        project = await catalog.get_project(session, "p")
        stored = await artifacts.add_file(
            session,
            storage,
            Actor(name="test"),
            project=project,
            package_name="pkg",
            version="1.0",
            filename="f.bin",
            staged=staged,
        )
        assert not stored.deduplicated
        gc_task = asyncio.create_task(collect(db, storage, grace=0))
        # Let gc get as far as it can while this transaction is open.
        await asyncio.wait({gc_task}, timeout=1.0)
    report = await asyncio.wait_for(gc_task, 30)
    assert report.orphans == []
    got = await client.get(file_path("1.0", "f.bin"))
    assert got.status_code == 200, got.text
    assert got.content == data
    assert (await check(db, storage)).ok
