"""One-hop write transactions on SQLite (`Database.write_blocking`), as the
cold proxy fetch stores each file with them on the embedded stack.

These run on a SQLite file with blobs on disk whatever the stack under test:
the feature exists only there (PostgreSQL and S3 keep the session path,
which the proxy tests of the production stack cover)."""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from sqlalchemy import func, select

from orchard.core import catalog
from orchard.core.artifacts import CachedFile, add_cached_file, add_cached_file_blocking
from orchard.core.bootstrap import ensure_builtin_projects
from orchard.db.base import utcnow
from orchard.db.models import Artifact, AuditEntry, CachedUrl, File, Package
from orchard.db.session import Database
from orchard.errors import Conflict, Unavailable
from orchard.settings import Settings
from orchard.storage.base import StagedBlob
from orchard.storage.filesystem import FilesystemStore
from orchard.upstream.stored import _remember_url, url_hash


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    yield data


@pytest.fixture
def embedded(tmp_path: Path, sqlite_template: Path) -> Iterator[Settings]:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    shutil.copy(sqlite_template, data_dir / "orchard.db")
    yield Settings(data_dir=data_dir, upstream_pypi_url="", upstream_npm_url="", upstream_go_url="")


@pytest.fixture
async def db(embedded: Settings) -> AsyncIterator[Database]:
    database = Database(embedded)
    await ensure_builtin_projects(database)
    try:
        yield database
    finally:
        await database.close()


@pytest.fixture
def store(embedded: Settings) -> FilesystemStore:
    return FilesystemStore(embedded.data_dir / "blobs")


async def _proxy_id(db: Database) -> int:
    async with db.session() as session:
        return (await catalog.get_project(session, catalog.PROXY_PROJECT)).id


def _place(
    project_id: int, filename: str, url: str, staged: StagedBlob, version: str = "1.0"
) -> CachedFile:
    remember = {
        "url_hash": url_hash(url),
        "url": url,
        "artifact_id": staged.info.sha256,
        "format": "pypi",
        "now": utcnow(),
    }
    return CachedFile(
        project_id=project_id,
        project_name=catalog.PROXY_PROJECT,
        package_name="demo",
        version=version,
        filename=filename,
        package_format="pypi",
        also=((_remember_url("sqlite"), remember),),
    )


async def _counts(db: Database) -> dict[str, Any]:
    async with db.session() as session:
        return {
            "files": await session.scalar(select(func.count()).select_from(File)),
            "packages": await session.scalar(
                select(func.count()).select_from(Package).where(Package.name == "demo")
            ),
            "audit": await session.scalar(
                select(func.count())
                .select_from(AuditEntry)
                .where(AuditEntry.action == "file.upload")
            ),
            "urls": await session.scalar(select(func.count()).select_from(CachedUrl)),
            "refs": dict((await session.execute(select(Artifact.id, Artifact.ref_count))).all()),
        }


async def test_blocking_and_session_paths_store_the_same_rows(
    db: Database, store: FilesystemStore
) -> None:
    assert db.blocking_writes
    project_id = await _proxy_id(db)
    data = os.urandom(5000)

    staged = await store.stage(_chunks(data))
    place = _place(project_id, "demo-1.0.tar.gz", "http://up.test/demo-1.0.tar.gz", staged)
    first = await db.write_blocking(lambda run: add_cached_file_blocking(run, store, place, staged))
    assert first.created and not first.deduplicated
    assert first.artifact.ref_count == 1
    assert await store.exists(staged.info.sha256)

    # The same bytes under another name through the session path: deduplicated.
    again = await store.stage(_chunks(data))
    other = _place(project_id, "demo-1.0.zip", "http://up.test/demo-1.0.zip", again)
    async with db.transaction() as session:
        second = await add_cached_file(session, store, other, again)
    assert second.created and second.deduplicated
    assert second.artifact.ref_count == 2

    # And once more through the blocking path, under a third name.
    third_staged = await store.stage(_chunks(data))
    third = _place(project_id, "demo-1.0.tgz", "http://up.test/demo-1.0.tgz", third_staged)
    stored = await db.write_blocking(
        lambda run: add_cached_file_blocking(run, store, third, third_staged)
    )
    assert stored.created and stored.deduplicated and stored.artifact.ref_count == 3

    counts = await _counts(db)
    assert counts["files"] == 3
    assert counts["packages"] == 1
    assert counts["audit"] == 3
    assert counts["urls"] == 3
    assert counts["refs"] == {staged.info.sha256: 3}  # the triggers counted every path


async def test_a_different_file_under_a_stored_name_changes_nothing(
    db: Database, store: FilesystemStore
) -> None:
    project_id = await _proxy_id(db)
    staged = await store.stage(_chunks(b"first bytes"))
    place = _place(project_id, "demo-1.0.tar.gz", "http://up.test/a", staged)
    await db.write_blocking(lambda run: add_cached_file_blocking(run, store, place, staged))
    before = await _counts(db)

    other = await store.stage(_chunks(b"other bytes"))
    clash = _place(project_id, "demo-1.0.tar.gz", "http://up.test/b", other)
    with pytest.raises(Conflict, match="immutable"):
        await db.write_blocking(lambda run: add_cached_file_blocking(run, store, clash, other))
    assert await _counts(db) == before  # rolled back: no artifact row, no URL
    assert not await store.exists(other.info.sha256)

    # The same bytes again under the same name: a success that adds nothing.
    same = await store.stage(_chunks(b"first bytes"))
    repeat = _place(project_id, "demo-1.0.tar.gz", "http://up.test/a", same)
    stored = await db.write_blocking(lambda run: add_cached_file_blocking(run, store, repeat, same))
    assert not stored.created
    assert (await _counts(db))["refs"] == before["refs"]
    assert not await anyio.Path(same.handle).exists()  # the staged copy was dropped


async def test_an_error_in_the_work_rolls_everything_back(db: Database) -> None:
    statement = _remember_url("sqlite")
    before = await _counts(db)

    def work(run: Any) -> None:
        # A URL row whose artifact does not exist: the foreign key refuses it.
        run(statement, {"url_hash": "h", "url": "u", "artifact_id": "0" * 64, "format": "pypi"})

    with pytest.raises(Conflict):
        await db.write_blocking(work)

    def fails_late(run: Any) -> None:
        raise RuntimeError("the work failed")

    with pytest.raises(RuntimeError):
        await db.write_blocking(fails_late)
    assert await _counts(db) == before


async def test_a_replaced_database_file_is_reopened_and_a_missing_one_refused(
    db: Database, store: FilesystemStore, embedded: Settings
) -> None:
    project_id = await _proxy_id(db)
    path = embedded.data_dir / "orchard.db"

    staged = await store.stage(_chunks(b"before the swap"))
    place = _place(project_id, "demo-1.0.tar.gz", "http://up.test/a", staged)
    await db.write_blocking(lambda run: add_cached_file_blocking(run, store, place, staged))

    # A restore from backup: another file under the same name.
    copy = path.with_suffix(".copy")
    shutil.copy(path, copy)
    os.replace(copy, path)
    staged = await store.stage(_chunks(b"after the swap"))
    place = _place(project_id, "demo-2.0.tar.gz", "http://up.test/b", staged, "2.0")
    await db.write_blocking(lambda run: add_cached_file_blocking(run, store, place, staged))
    fresh = Database(embedded)
    try:
        assert (await _counts(fresh))["files"] == 2  # the write went to the new file
    finally:
        await fresh.close()

    path.unlink()
    staged = await store.stage(_chunks(b"no database"))
    place = _place(project_id, "demo-3.0.tar.gz", "http://up.test/c", staged, "3.0")
    with pytest.raises(Unavailable):
        await db.write_blocking(lambda run: add_cached_file_blocking(run, store, place, staged))
    assert not path.exists()  # no empty database in its place


async def test_a_cancelled_caller_keeps_the_write_turn_until_its_transaction_ends(
    db: Database,
) -> None:
    """Cancelling the awaiting task does not let the next transaction start
    on the kept connection while the first one is still running."""
    started, release = threading.Event(), threading.Event()
    order: list[str] = []

    def slow(run: Any) -> None:
        started.set()
        release.wait(5)
        order.append("first ended")

    def second(run: Any) -> None:
        order.append("second began")

    first = asyncio.create_task(db.write_blocking(slow))
    await asyncio.to_thread(started.wait, 5)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    follower = asyncio.create_task(db.write_blocking(second))
    await asyncio.sleep(0.1)
    assert order == []  # still waiting for the first transaction's turn
    release.set()
    await follower
    assert order == ["first ended", "second began"]


async def test_a_closed_database_refuses_late_blocking_writes(db: Database) -> None:
    await db.close()
    with pytest.raises(Unavailable):
        await db.write_blocking(lambda run: None)
