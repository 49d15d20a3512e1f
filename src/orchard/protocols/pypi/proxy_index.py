"""Upstream project pages: fetched from every source, cached, revalidated,
merged in priority order, and served stale when the upstreams fail.

Two cache entries per project (category PACKAGE_INDEX, protocol ``pypi``):
``page:{name}`` holds what each source answered (files, ETag,
Last-Modified) and lives long (``STALE_TTL``); ``fresh:{name}`` is a marker
that lives ``ORCHARD_CACHE_TTL_INDEX`` seconds. While the marker lives the
page is served as is; after that the sources are asked again with
If-None-Match / If-Modified-Since (a 304 keeps the entry). A source that
fails keeps its last answer and the page is marked stale; the marker is
then set for at most ``FAILURE_RETRY`` seconds so that a dead upstream is
not waited for on every request. ``ORCHARD_OFFLINE`` never asks.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from orchard.cache.base import Category
from orchard.errors import UpstreamError
from orchard.protocols.pypi.upstream import SourcePage, UpstreamFile, fetch_source_page
from orchard.upstream.context import UpstreamContext
from orchard.upstream.sources import Source

log = logging.getLogger("orchard.upstream")

PROTOCOL = "pypi"
STALE_TTL = 30 * 24 * 3600  # how long a page is kept for stale-if-error and offline use
FAILURE_RETRY = 30  # seconds before failed upstreams are asked again
UNLISTED_RETRY = 30  # at most one refresh per page and this many seconds for unlisted files


def entry_key(source: Source) -> str:
    """What a source's cached answer was made under: its URL, and the file
    hosts its links were filtered by (a change to either refetches the page)."""
    if not source.file_hosts:
        return source.url
    return f"{source.url} {' '.join(source.file_hosts)}"


@dataclass
class SourceEntry:
    url: str  # entry_key of the source when it answered (a change invalidates)
    files: list[UpstreamFile] = field(default_factory=list)
    etag: str | None = None
    last_modified: str | None = None
    missing: bool = False  # the source answered 404

    def to_json(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "files": [f.to_json() for f in self.files],
            "etag": self.etag,
            "last_modified": self.last_modified,
            "missing": self.missing,
        }


@dataclass
class CachedIndex:
    sources: dict[str, SourceEntry]
    stale: bool = False
    fetched_at: float = 0.0

    def encode(self) -> bytes:
        # (dataclasses.asdict deep-copies every value: a fifth of a cold page's own time)
        sources = {name: entry.to_json() for name, entry in self.sources.items()}
        data = {"sources": sources, "stale": self.stale, "fetched_at": self.fetched_at}
        return json.dumps(data, separators=(",", ":")).encode()

    @classmethod
    def decode(cls, raw: bytes) -> CachedIndex:
        data: dict[str, Any] = json.loads(raw)
        sources = {}
        for name, entry in data["sources"].items():
            files = [UpstreamFile.from_json(f) for f in entry.pop("files")]
            sources[name] = SourceEntry(files=files, **entry)
        return cls(sources=sources, stale=data["stale"], fetched_at=data["fetched_at"])


@dataclass
class MergedIndex:
    """The page as served: each filename from the first source that has it."""

    files: list[tuple[Source, UpstreamFile]]
    stale: bool

    def find(self, filename: str) -> tuple[Source, UpstreamFile] | None:
        for source, f in self.files:
            if f.filename == filename:
                return source, f
        return None


async def _read(ctx: UpstreamContext, name: str) -> CachedIndex | None:
    raw = await ctx.cache.get(Category.PACKAGE_INDEX, PROTOCOL, f"page:{name}")
    if raw is None:
        return None
    try:
        return CachedIndex.decode(raw)
    except (ValueError, KeyError, TypeError):
        log.warning("ignoring a malformed cached page for %s", name)
        return None


async def _is_fresh(ctx: UpstreamContext, name: str) -> bool:
    return await ctx.cache.get(Category.PACKAGE_INDEX, PROTOCOL, f"fresh:{name}") is not None


async def may_force(ctx: UpstreamContext, name: str) -> bool:
    """Whether a request for a file not on the page of ``name`` may refresh
    it now: once per ``UNLISTED_RETRY`` seconds (or the page's TTL, if
    shorter), so that requests for made-up names cannot hammer the upstreams."""
    key = f"forced:{name}"
    if await ctx.cache.get(Category.PACKAGE_INDEX, PROTOCOL, key) is not None:
        return False
    ttl = max(1, min(UNLISTED_RETRY, ctx.settings.cache_ttl_index))
    await ctx.cache.set(Category.PACKAGE_INDEX, PROTOCOL, key, b"1", ttl)
    return True


async def expire(ctx: UpstreamContext, name: str) -> None:
    """End the TTL of a page now (the next request revalidates it)."""
    await ctx.cache.delete(Category.PACKAGE_INDEX, PROTOCOL, f"fresh:{name}")


def merge(index: CachedIndex, sources: list[Source], stale: bool) -> MergedIndex | None:
    files: list[tuple[Source, UpstreamFile]] = []
    seen: set[str] = set()
    present = False
    for source in sources:
        entry = index.sources.get(source.name)
        if entry is None or entry.url != entry_key(source):
            continue
        present = present or not entry.missing
        for f in entry.files:
            if f.filename not in seen:
                seen.add(f.filename)
                files.append((source, f))
    return MergedIndex(files, stale) if present else None


async def load(ctx: UpstreamContext, name: str, *, force: bool = False) -> MergedIndex | None:
    """The merged upstream page of normalised ``name``; None when no upstream
    has it. ``force`` revalidates even a fresh page (an unlisted file)."""
    sources = await ctx.sources(PROTOCOL)
    cached = await _read(ctx, name)
    if ctx.settings.offline or not sources:
        if cached is None:
            return None
        return merge(cached, sources, cached.stale or not await _is_fresh(ctx, name))
    if cached is not None and not force and await _is_fresh(ctx, name):
        return merge(cached, sources, cached.stale)
    index: CachedIndex = await ctx.pages.run(
        f"{PROTOCOL}:{name}", lambda: _refresh(ctx, name, sources, cached)
    )
    return merge(index, sources, index.stale)


async def _ask(
    ctx: UpstreamContext, source: Source, name: str, prev: SourceEntry | None
) -> SourcePage:
    """One source's answer, within a total deadline (a trickling upstream
    cannot hold a page request longer than one connect plus one read)."""
    headers = ctx.headers_for(source, source.url)
    etag, modified = (prev.etag, prev.last_modified) if prev else (None, None)
    deadline = ctx.settings.http_connect_timeout + ctx.settings.http_read_timeout
    try:
        async with asyncio.timeout(deadline):
            return await fetch_source_page(ctx.http, source, name, headers, etag, modified)
    except TimeoutError:
        log.warning("upstream %s too slow for %s", source.name, name)
        return SourcePage("error", error="timeout")


async def _refresh(
    ctx: UpstreamContext, name: str, sources: list[Source], cached: CachedIndex | None
) -> CachedIndex:
    old = cached.sources if cached else {}
    keys = [entry_key(s) for s in sources]
    prevs = [
        old[s.name] if s.name in old and old[s.name].url == key else None
        for s, key in zip(sources, keys, strict=True)
    ]
    pages = await asyncio.gather(
        *(_ask(ctx, s, name, p) for s, p in zip(sources, prevs, strict=True))
    )
    entries: dict[str, SourceEntry] = {}
    failed = False
    for source, prev, page in zip(sources, prevs, pages, strict=True):
        if page.status == "ok":
            entries[source.name] = SourceEntry(
                entry_key(source), page.files, page.etag, page.last_modified
            )
        elif page.status == "missing":
            entries[source.name] = SourceEntry(entry_key(source), missing=True)
        elif page.status == "not_modified" and prev is not None:
            entries[source.name] = prev
        else:
            failed = True
            if prev is not None:
                entries[source.name] = prev
    if failed and not entries:
        raise UpstreamError(f"no upstream index answered for {name!r} and nothing is cached")
    index = CachedIndex(entries, stale=failed, fetched_at=time.time())
    ttl = ctx.settings.cache_ttl_index
    if failed:
        ttl = min(ttl, FAILURE_RETRY)
        log.warning("serving a stale page for %s", name, extra={"event": "upstream_stale"})
    await ctx.cache.set(Category.PACKAGE_INDEX, PROTOCOL, f"page:{name}", index.encode(), STALE_TTL)
    await ctx.cache.set(Category.PACKAGE_INDEX, PROTOCOL, f"fresh:{name}", b"1", ttl)
    return index
