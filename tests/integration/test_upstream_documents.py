"""The shared cached upstream document (upstream/documents.py) against a
fake upstream over real HTTP: TTL, revalidation with If-None-Match (a 304
keeps the entry), stale-if-error, the failure retry, and what is raised
when nothing is cached. The document here belongs to no format: its ask
function is the test's own."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from orchard.errors import UpstreamError
from orchard.settings import Settings
from orchard.upstream.client import HTTPError
from orchard.upstream.context import UpstreamContext, upstream_context
from orchard.upstream.documents import Answer, Ask, Codec, Documents
from orchard.upstream.sources import Source
from tests.fakes.documents import FakeUpstream

TTL = 1
DOCS: Documents[str] = Documents("doc-test", Codec(lambda s: s, str))


@pytest.fixture
def fake() -> Iterator[FakeUpstream]:
    upstream = FakeUpstream().start()
    yield upstream
    upstream.stop()


@pytest.fixture
def settings(stack_settings: Settings) -> Settings:
    return stack_settings.model_copy(
        update={"cache_ttl_index": TTL, "http_connect_timeout": 1.0, "http_read_timeout": 2.0}
    )


def _source(fake: FakeUpstream) -> Source:
    return Source(name="fake", format="pypi", url=fake.url, priority=0, origin="settings")


def _ask(ctx: UpstreamContext, name: str) -> Ask[str]:
    async def ask(source: Source, etag: str | None, modified: str | None) -> Answer[str]:
        headers = {"If-None-Match": etag} if etag else {}
        url = f"{source.url}/doc/{name}"
        try:
            async with ctx.http.stream("GET", url, headers=headers, rule=source.rule) as r:
                if r.status_code == 304:
                    return Answer("not_modified")
                if r.status_code == 404:
                    return Answer("missing")
                if r.status_code != 200:
                    return Answer("error", error=f"HTTP {r.status_code}")
                body = b"".join([chunk async for chunk in r.aiter_bytes()])
                return Answer("ok", body.decode(), r.headers.get("etag"))
        except HTTPError as exc:
            return Answer("error", error=type(exc).__name__)

    return ask


async def _load(app: Any, fake: FakeUpstream, name: str, force: bool = False) -> Any:
    ctx = upstream_context(app)
    return await DOCS.load(ctx, name, [_source(fake)], _ask(ctx, name), force=force)


def _payload(doc: Any) -> str | None:
    entry = doc.entries["fake"]
    return None if entry.missing else entry.payload  # type: ignore[no-any-return]


async def test_fresh_within_ttl_then_revalidated_with_304(app: Any, fake: FakeUpstream) -> None:
    fake.bodies["/doc/a"] = b"first"
    doc = await _load(app, fake, "a")
    assert (_payload(doc), doc.stale) == ("first", False)
    assert (await _load(app, fake, "a")).entries["fake"].payload == "first"
    assert fake.hits["/doc/a"] == 1  # fresh: not asked again
    await asyncio.sleep(TTL + 0.3)
    doc = await _load(app, fake, "a")
    assert (_payload(doc), doc.stale) == ("first", False)
    assert fake.hits["/doc/a"] == 2 and fake.conditional["/doc/a"] == 1  # a 304 kept it
    fake.bodies["/doc/a"] = b"second"
    await DOCS.expire(upstream_context(app), "a")
    assert _payload(await _load(app, fake, "a")) == "second"  # a changed document replaces it


async def test_stale_if_error_and_the_failure_retry(app: Any, fake: FakeUpstream) -> None:
    fake.bodies["/doc/b"] = b"kept"
    await _load(app, fake, "b")
    fake.status = 503
    await DOCS.expire(upstream_context(app), "b")
    doc = await _load(app, fake, "b")
    assert (_payload(doc), doc.stale) == ("kept", True)  # the last good answer, marked stale
    asked = fake.hits["/doc/b"]
    doc = await _load(app, fake, "b")
    assert fake.hits["/doc/b"] == asked and doc.stale  # a failed upstream is not asked at once
    fake.status = None
    await asyncio.sleep(TTL + 0.3)  # the failure retry (at most the TTL)
    doc = await _load(app, fake, "b")
    assert (_payload(doc), doc.stale) == ("kept", False)
    fake.status = 500
    doc = await _load(app, fake, "b", force=True)
    assert (_payload(doc), doc.stale) == ("kept", True)


async def test_nothing_cached_and_upstream_failing_raises(app: Any, fake: FakeUpstream) -> None:
    fake.status = 502
    with pytest.raises(UpstreamError):
        await _load(app, fake, "c")


async def test_missing_and_may_force(app: Any, fake: FakeUpstream) -> None:
    doc = await _load(app, fake, "d")
    assert doc.entries["fake"].missing and not doc.stale
    ctx = upstream_context(app)
    assert await DOCS.may_force(ctx, "d")
    assert not await DOCS.may_force(ctx, "d")  # once per UNLISTED_RETRY (or the TTL)
    fake.bodies["/doc/d"] = b"now here"
    assert _payload(await _load(app, fake, "d", force=True)) == "now here"
