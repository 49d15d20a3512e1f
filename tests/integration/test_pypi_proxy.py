"""The PyPI caching proxy against fake upstream indexes on 127.0.0.1."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import threading
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, select, text, update

from orchard.app import create_app
from orchard.cache.base import Category
from orchard.db.models import Artifact, ArtifactDependency, AuditEntry, CachedUrl, Version
from orchard.errors import StorageUploadError
from orchard.protocols.pypi import proxy_index, upstream
from orchard.settings import Settings
from orchard.upstream import stored
from orchard.upstream.context import upstream_context
from tests.conftest import STACK
from tests.fakes.pypi_upstream import FakeFile, FakePyPI
from tests.pypi_proxy_support import HTML, count, file_url, finished, page, publish
from tests.support import SettlingTransport


@pytest.fixture
def settings(stack_settings: Settings, fake: FakePyPI) -> Settings:
    return stack_settings.model_copy(
        update={"upstream_pypi_url": fake.url, "http_connect_timeout": 1.0,
                "http_read_timeout": 1.0}
    )


@pytest.mark.parametrize("fmt", ["json", "html"])
async def test_page_is_fetched_rewritten_and_cached(
    client: httpx.AsyncClient, fake: FakePyPI, fmt: str
) -> None:
    fake.index.fmt = fmt
    wheel = publish(fake, "tiny", "1.0", requires_python=">=3.8")
    old = publish(fake, "tiny", "0.9", sidecar=False)
    old.yanked = "broken"
    r = await page(client, "tiny")
    assert r.status_code == 200, r.text
    doc = r.json()
    files = {f["filename"]: f for f in doc["files"]}
    assert set(files) == {wheel.filename, old.filename}
    new = files[wheel.filename]
    assert new["url"] == f"http://testserver/pypi/proxy/upstream/tiny/{wheel.filename}"
    assert new["hashes"] == {"sha256": wheel.sha256}
    assert new["requires-python"] == ">=3.8"
    assert wheel.metadata is not None
    assert new["core-metadata"] == {"sha256": hashlib.sha256(wheel.metadata).hexdigest()}
    assert files[old.filename]["yanked"] == "broken"
    assert files[old.filename]["core-metadata"] is False
    assert sorted(doc["versions"]) == ["0.9", "1.0"]
    html = await page(client, "tiny", accept=HTML)
    assert f"/pypi/proxy/upstream/tiny/{wheel.filename}#sha256={wheel.sha256}" in html.text
    assert fake.hits("/simple/tiny/") == 1  # the second and third were served from cache
    assert "x-orchard-stale" not in r.headers
    assert (await page(client, "absent")).status_code == 404


async def test_file_is_fetched_once_stored_and_deduplicated(
    client: httpx.AsyncClient, app: Any, fake: FakePyPI
) -> None:
    wheel = publish(fake, "tiny", "1.0", requires_dist=("attrs>=20", "idna; extra == 'x'"))
    url = await file_url(client, "tiny", wheel.filename)
    first = await client.get(url)
    assert first.status_code == 200
    assert first.content == wheel.content
    assert "x-checksum-md5" not in first.headers  # computed after the answer, see below
    second = await client.get(url)
    assert second.content == wheel.content
    assert second.headers["etag"] == f'"{wheel.sha256}"'
    ranged = await client.get(url, headers={"Range": "bytes=0-3"})
    assert ranged.status_code == 206 and ranged.content == wheel.content[:4]
    assert fake.hits(f"/files/{wheel.filename}") == 1
    assert await count(app, CachedUrl) == 1
    # In the proxy project, and deduplicated with an upload of the same bytes.
    listing = await client.get("/api/v1/project/proxy/packages/tiny/versions/1.0")
    assert listing.status_code == 200, listing.text
    assert [f["filename"] for f in listing.json()["files"]] == [wheel.filename]
    # MD5, SHA-1, SHA-512 and the dependencies follow the answer (finish.py).
    digests = await finished(app, wheel.sha256)
    assert digests == {
        "md5": hashlib.md5(wheel.content).hexdigest(),
        "sha1": hashlib.sha1(wheel.content).hexdigest(),
        "sha512": hashlib.sha512(wheel.content).hexdigest(),
    }
    finished_answer = await client.get(url)
    assert finished_answer.headers["x-checksum-md5"] == digests["md5"]
    await client.post("/api/v1/projects", json={"name": "team"})
    put = await client.put(f"/api/v1/project/team/packages/x/versions/1/files/{wheel.filename}",
                           content=wheel.content)
    assert put.status_code in (200, 201)
    detail = (await client.get(f"/api/v1/artifacts/{wheel.sha256}")).json()
    assert detail["ref_count"] == 2
    deps = {d["name"]: d for d in detail["dependencies"]}
    assert set(deps) == {"attrs", "idna"}
    assert deps["idna"]["kind"] == "optional"


async def test_cached_rows_are_written_as_the_orm_writes_them(
    client: httpx.AsyncClient, app: Any, fake: FakePyPI
) -> None:
    """The proxy's store runs prebuilt statements (db/prebuilt.py): same
    values, defaults and storage formats as every other write."""
    wheel = publish(fake, "tiny", "1.0")
    assert (await client.get(await file_url(client, "tiny", wheel.filename))).status_code == 200
    async with app.state.db.session() as session:
        version = await session.scalar(select(Version).where(Version.version == "1.0"))
        assert version is not None
        assert version.yanked is False and version.yank_reason == "" and version.meta == {}
        assert version.created_at.tzinfo is not None
        entry = await session.scalar(
            select(AuditEntry).where(AuditEntry.action == "file.upload").order_by(
                AuditEntry.id.desc()
            )
        )
        assert entry is not None and entry.actor == "system"
        assert entry.detail == {"sha256": wheel.sha256, "size": len(wheel.content),
                                "deduplicated": False}
        if STACK != "production":  # SQLite keeps timestamps as text: one format for all
            stamps = await session.execute(
                text("SELECT p.created_at, v.created_at, a.at FROM projects p, versions v, "
                     "audit_log a WHERE p.name = 'proxy' AND a.id = :id"), {"id": entry.id}
            )
            formats = {re.sub(r"\d", "0", value) for value in stamps.one()}
            assert len(formats) == 1, formats


async def test_lost_finishing_is_done_when_the_file_is_served_again(
    client: httpx.AsyncClient, app: Any, fake: FakePyPI
) -> None:
    wheel = publish(fake, "tiny", "1.0", requires_dist=("attrs>=20",))
    url = await file_url(client, "tiny", wheel.filename)
    assert (await client.get(url)).status_code == 200
    await finished(app, wheel.sha256)
    async with app.state.db.transaction() as session:  # as if the process had stopped first
        await session.execute(
            update(Artifact).where(Artifact.id == wheel.sha256).values(md5="", sha512="")
        )
        await session.execute(delete(ArtifactDependency))
    again = await client.get(url)
    assert again.content == wheel.content
    assert (await finished(app, wheel.sha256))["md5"] == hashlib.md5(wheel.content).hexdigest()
    detail = (await client.get(f"/api/v1/artifacts/{wheel.sha256}")).json()
    assert [d["name"] for d in detail["dependencies"]] == ["attrs"]
    assert fake.hits(f"/files/{wheel.filename}") == 1


async def test_finishing_waits_while_clients_keep_asking(
    client: httpx.AsyncClient, app: Any, fake: FakePyPI
) -> None:
    """Requests answered from the cache keep deferred work waiting (quiet
    shortened for the test); it runs once they stop."""
    wheel = publish(fake, "tiny", "1.0", requires_dist=("attrs>=20",))
    url = await file_url(client, "tiny", wheel.filename)
    background = app.state.http.background
    background._quiet = 0.3
    assert app.background is background
    assert (await client.get(url)).status_code == 200
    for _ in range(6):  # a client every 0.1 s: never quiet
        assert (await client.get("/pypi/proxy/simple/tiny/")).status_code == 200
        await asyncio.sleep(0.1)
        assert upstream_context(app).finishing
    assert (await finished(app, wheel.sha256))["md5"] == hashlib.md5(wheel.content).hexdigest()


async def test_shutdown_finishes_deferred_work(settings: Settings, fake: FakePyPI) -> None:
    wheel = publish(fake, "tiny", "1.0", requires_dist=("attrs>=20",))
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        transport = SettlingTransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            url = await file_url(c, "tiny", wheel.filename)
            assert (await c.get(url)).content == wheel.content
        assert upstream_context(application).finishing  # deferred: not done yet
    again = create_app(settings)
    async with again.router.lifespan_context(again), again.state.db.session() as session:
        row = await session.get(Artifact, wheel.sha256)
        assert row is not None and row.sha1 == hashlib.sha1(wheel.content).hexdigest()
        names = await session.scalars(
            select(ArtifactDependency.name).where(
                ArtifactDependency.artifact_id == wheel.sha256
            )
        )
        assert list(names) == ["attrs"]


async def test_metadata_sidecar_only_when_the_upstream_offers_it(
    client: httpx.AsyncClient, fake: FakePyPI
) -> None:
    with_meta = publish(fake, "tiny", "1.0")
    without = publish(fake, "tiny", "2.0", sidecar=False)
    url = await file_url(client, "tiny", with_meta.filename)
    r = await client.get(url + ".metadata")
    assert r.status_code == 200
    assert r.content == with_meta.metadata
    assert (await client.get(url + ".metadata")).content == with_meta.metadata
    assert fake.hits(f"/files/{with_meta.filename}.metadata") == 1
    other = await file_url(client, "tiny", without.filename)
    assert (await client.get(other + ".metadata")).status_code == 404
    assert fake.hits(f"/files/{without.filename}.metadata") == 0


async def _nothing_stored(app: Any, *contents: bytes) -> None:
    assert await count(app, CachedUrl) == 0
    for content in contents:
        sha = hashlib.sha256(content).hexdigest()
        async with app.state.db.session() as session:
            assert await session.get(Artifact, sha) is None
        assert not await app.state.storage.exists(sha)


async def test_corrupted_upstream_file_is_refused_and_nothing_is_kept(
    client: httpx.AsyncClient, app: Any, fake: FakePyPI
) -> None:
    wheel = publish(fake, "tiny", "1.0")
    fake.index.corrupt.add(wheel.filename)
    url = await file_url(client, "tiny", wheel.filename)
    r = await client.get(url)
    assert r.status_code == 502
    assert "sha256" in r.json()["error"]["message"]
    corrupted = wheel.content[:-1] + bytes([wheel.content[-1] ^ 0xFF])
    await _nothing_stored(app, wheel.content, corrupted)
    fake.index.corrupt.clear()  # repaired upstream: fetched again, now kept
    assert (await client.get(url)).content == wheel.content


async def test_verified_file_is_answered_even_when_storing_it_fails(
    client: httpx.AsyncClient, app: Any, fake: FakePyPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cold file is verified before its last byte is sent and committed
    after: a failing commit leaves the first client with good bytes, keeps
    nothing, and the next request fetches the file again."""
    wheel = publish(fake, "tiny", "1.0")
    url = await file_url(client, "tiny", wheel.filename)

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise StorageUploadError("cannot store blob: disk full")

    monkeypatch.setattr(stored, "add_cached_file", broken)
    first = await client.get(url)
    assert first.status_code == 200 and first.content == wheel.content
    assert first.headers["x-orchard-cache"] == "miss"
    assert first.headers["etag"] == f'"{wheel.sha256}"'
    assert first.headers["x-checksum-sha256"] == wheel.sha256
    await _nothing_stored(app, wheel.content)
    monkeypatch.undo()
    again = await client.get(url)
    assert again.status_code == 200 and again.content == wheel.content
    assert fake.hits(f"/files/{wheel.filename}") == 2
    assert await count(app, CachedUrl) == 1


async def test_small_file_is_answered_before_it_reaches_storage(
    client: httpx.AsyncClient, app: Any, fake: FakePyPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cold file that fits in memory is hashed and verified there, answered,
    and only then staged: the client does not wait for storage."""
    wheel = publish(fake, "tiny", "1.0")
    url = await file_url(client, "tiny", wheel.filename)
    storage = app.state.storage
    release = threading.Event()  # storage is stuck until the test lets it go
    staging_calls: list[int] = []
    if hasattr(storage, "stage_bytes_blocking"):  # the filesystem: held bytes written as is
        real_write = storage.stage_bytes_blocking

        def stuck_write(*args: Any) -> Any:
            staging_calls.append(1)
            release.wait(30)
            return real_write(*args)

        monkeypatch.setattr(storage, "stage_bytes_blocking", stuck_write)
    else:
        real_stage = storage.stage

        async def stuck_stage(*args: Any, **kwargs: Any) -> Any:
            staging_calls.append(1)
            await asyncio.to_thread(release.wait, 30)
            return await real_stage(*args, **kwargs)

        monkeypatch.setattr(storage, "stage", stuck_stage)
    # (a transport that does not wait for the work after the answer: the fixture's does)
    plain = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=client.base_url)
    try:
        async with plain:  # answered well within the time storage stays stuck
            first = await asyncio.wait_for(plain.get(url), 5)
        assert first.status_code == 200 and first.content == wheel.content
        assert first.headers["x-checksum-sha256"] == wheel.sha256
        assert await count(app, CachedUrl) == 0  # not stored yet ...
    finally:
        release.set()
    for _ in range(250):  # ... and stored once storage answers
        if await count(app, CachedUrl) == 1:
            break
        await asyncio.sleep(0.02)
    assert await count(app, CachedUrl) == 1
    assert staging_calls == [1]
    again = await client.get(url)
    assert again.content == wheel.content and again.headers.get("x-orchard-cache") != "miss"
    assert fake.hits(f"/files/{wheel.filename}") == 1


async def test_large_corrupted_file_aborts_the_stream(
    client: httpx.AsyncClient, app: Any, fake: FakePyPI
) -> None:
    content = os.urandom(3 * 1024 * 1024)
    f = fake.index.add("big", FakeFile("big-1.0.tar.gz", content))
    fake.index.corrupt.add(f.filename)
    url = await file_url(client, "big", f.filename)
    received = b""
    with pytest.raises(Exception):  # noqa: B017 - the stream is cut, not completed
        async with client.stream("GET", url) as r:
            assert r.status_code == 200
            async for chunk in r.aiter_bytes():
                received += chunk
    assert len(received) < len(content)  # never a complete body
    await _nothing_stored(app, content)


async def test_large_file_streams_through_and_is_kept(
    client: httpx.AsyncClient, fake: FakePyPI
) -> None:
    content = os.urandom(3 * 1024 * 1024 + 5)
    f = fake.index.add("big", FakeFile("big-1.0.tar.gz", content))
    url = await file_url(client, "big", f.filename)
    r = await client.get(url)
    assert r.status_code == 200 and r.content == content
    assert r.headers["content-length"] == str(len(content))
    again = await client.get(url)
    assert again.content == content and "etag" in again.headers
    assert fake.hits(f"/files/{f.filename}") == 1


@pytest.mark.parametrize("failure", ["down", "5xx", "slow"])
async def test_failing_upstream_serves_the_stale_page_and_cached_files(
    client: httpx.AsyncClient, app: Any, fake: FakePyPI, failure: str
) -> None:
    wheel = publish(fake, "tiny", "1.0")
    url = await file_url(client, "tiny", wheel.filename)
    assert (await client.get(url)).status_code == 200
    if failure == "down":
        fake.stop()
    elif failure == "5xx":
        fake.index.status = 503
    else:
        fake.index.delay = 2.5  # past the 1 s read timeout
    await proxy_index.expire(upstream_context(app), "tiny")  # the TTL ends
    r = await page(client, "tiny")
    assert r.status_code == 200
    assert r.headers["x-orchard-stale"] == "1"
    assert [f["filename"] for f in r.json()["files"]] == [wheel.filename]
    assert (await client.get(url)).content == wheel.content
    assert (await page(client, "never-seen")).status_code == 502
    await app.state.cache.clear(Category.PACKAGE_INDEX)  # the cached page is lost too
    r = await page(client, "tiny")
    assert r.status_code == 200 and r.headers["x-orchard-stale"] == "1"
    (only,) = r.json()["files"]  # rebuilt from the stored files
    assert only["url"] == url and only["hashes"] == {"sha256": wheel.sha256}
    assert (await client.get(url)).content == wheel.content


@pytest.mark.parametrize("fmt", ["json", "html"])
async def test_oversized_upstream_page_is_refused_while_reading(
    client: httpx.AsyncClient, fake: FakePyPI, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    """A page past the size limit is not read to its end, not kept, and
    answered 502; under the limit it is served as usual."""
    for i in range(30):
        publish(fake, "wide", f"1.{i}")
    monkeypatch.setattr(upstream, "MAX_PAGE_BYTES", 2000)
    fake.index.fmt = fmt  # what the upstream sends
    r = await page(client, "wide")
    assert r.status_code == 502
    monkeypatch.undo()
    r = await page(client, "wide")
    assert r.status_code == 200 and len(r.json()["files"]) == 30


async def test_revalidation_sends_the_etag(
    client: httpx.AsyncClient, app: Any, fake: FakePyPI
) -> None:
    publish(fake, "tiny", "1.0")
    assert (await page(client, "tiny")).status_code == 200
    await proxy_index.expire(upstream_context(app), "tiny")
    r = await page(client, "tiny")
    assert r.status_code == 200 and "x-orchard-stale" not in r.headers
    assert fake.hits("/simple/tiny/") == 2
    assert "if-none-match" in fake.index.headers["/simple/tiny/"]
    publish(fake, "tiny", "2.0")  # the page changes: the next revalidation gets it
    await proxy_index.expire(upstream_context(app), "tiny")
    assert len((await page(client, "tiny")).json()["files"]) == 2


async def test_offline_serves_only_the_cache(
    client: httpx.AsyncClient, app: Any, fake: FakePyPI
) -> None:
    cached = publish(fake, "tiny", "1.0")
    uncached = publish(fake, "tiny", "2.0")
    publish(fake, "other", "1.0")
    url = await file_url(client, "tiny", cached.filename)
    assert (await client.get(url)).status_code == 200
    fake.reset()
    app.state.settings.offline = True
    try:
        assert (await page(client, "tiny")).status_code == 200
        assert (await client.get(url)).content == cached.content
        missing = url.replace(cached.filename, uncached.filename)
        assert (await client.get(missing)).status_code == 404
        assert (await page(client, "other")).status_code == 404
        assert sum(fake.index.hits.values()) == 0
    finally:
        app.state.settings.offline = False


async def test_unlisted_file_forces_one_refresh(
    client: httpx.AsyncClient, app: Any, fake: FakePyPI
) -> None:
    first = publish(fake, "tiny", "1.0")
    url = await file_url(client, "tiny", first.filename)
    newer = publish(fake, "tiny", "2.0")
    r = await client.get(url.replace(first.filename, newer.filename))
    assert r.status_code == 200 and r.content == newer.content
    assert fake.hits("/simple/tiny/") == 2
    # One forced refresh per page and interval: made-up names do not reach the upstream.
    for n in range(5):
        bogus = await client.get(url.replace(first.filename, f"tiny-9.{n}-py3-none-any.whl"))
        assert bogus.status_code == 404
    assert fake.hits("/simple/tiny/") == 2
    await app.state.cache.delete(Category.PACKAGE_INDEX, "pypi", "forced:tiny")  # interval over
    newest = publish(fake, "tiny", "3.0")
    r = await client.get(url.replace(first.filename, newest.filename))
    assert r.status_code == 200 and r.content == newest.content
    assert fake.hits("/simple/tiny/") == 3
    assert (await client.get("/pypi/proxy/upstream/tiny/x/y")).status_code == 404


async def test_fifty_concurrent_requests_fetch_once(
    client: httpx.AsyncClient, app: Any, fake: FakePyPI
) -> None:
    wheel = publish(fake, "tiny", "1.0")
    fake.index.delay = 0.3
    url = f"/pypi/proxy/upstream/tiny/{wheel.filename}"
    responses = await asyncio.gather(*(client.get(url) for _ in range(50)))
    assert [r.status_code for r in responses] == [200] * 50
    assert all(r.content == wheel.content for r in responses)
    assert fake.hits(f"/files/{wheel.filename}") == 1
    assert fake.hits("/simple/tiny/") == 1
    assert await count(app, CachedUrl) == 1


async def test_project_with_upstream_serves_upstream_pages(
    client: httpx.AsyncClient, fake: FakePyPI
) -> None:
    wheel = publish(fake, "tiny", "1.0")
    await client.post("/api/v1/projects", json={"name": "team"})
    await client.post("/api/v1/projects", json={"name": "closed", "upstream": False})
    url = await file_url(client, "tiny", wheel.filename, project="team")
    assert url.startswith("http://testserver/pypi/team/upstream/tiny/")
    assert (await client.get(url)).content == wheel.content
    assert (await page(client, "tiny", project="closed")).status_code == 404
    assert (await client.get(url.replace("/team/", "/closed/"))).status_code == 404
    listing = await client.get("/api/v1/project/proxy/packages/tiny/versions/1.0")
    assert listing.status_code == 200  # cached files live in the proxy project


@pytest.mark.skipif(STACK != "production", reason="replicas share Redis on the production stack")
async def test_two_replicas_fetch_a_file_once(
    app: Any, settings: Settings, fake: FakePyPI
) -> None:
    wheel = publish(fake, "tiny", "1.0")
    fake.index.delay = 0.5
    url = f"/pypi/proxy/upstream/tiny/{wheel.filename}"
    other = create_app(settings)
    async with other.router.lifespan_context(other):
        clients = [httpx.AsyncClient(transport=httpx.ASGITransport(app=a),
                                     base_url="http://testserver") for a in (app, other)]
        try:
            responses = await asyncio.gather(*(c.get(url) for c in clients for _ in range(10)))
        finally:
            for c in clients:
                await c.aclose()
    assert [r.status_code for r in responses] == [200] * 20
    assert all(r.content == wheel.content for r in responses)
    assert fake.hits(f"/files/{wheel.filename}") == 1
