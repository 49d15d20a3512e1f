"""Cached upstream documents: what the sources of a format answered for one
name, kept with TTL, conditional revalidation and stale-if-error.

A document (a PyPI project page, an npm packument, a Go version list) is
asked of every source of a format; each source's answer is kept apart
(``Entry``: the format's payload, ETag, Last-Modified, or "missing"), so
the format merges them in its own priority order. Two cache entries per
name (category PACKAGE_INDEX, the format's namespace): ``page:{name}``
holds the entries and lives long (``STALE_TTL``); ``fresh:{name}`` is a
marker that lives ``ORCHARD_CACHE_TTL_INDEX`` seconds. While the marker
lives the document is served as is; after that the sources are asked again
with If-None-Match / If-Modified-Since (a 304 keeps the entry). A source
that fails keeps its last answer and the document is marked stale; the
marker is then set for at most ``FAILURE_RETRY`` seconds so that a dead
upstream is not waited for on every request. ``ORCHARD_OFFLINE`` never asks.

Nothing here knows a format or an HTTP framework: the format gives its
namespace, a codec for its payload and the function that asks one source.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any, Generic, TypeVar

from orchard.cache.base import Category
from orchard.errors import UpstreamError
from orchard.upstream.context import UpstreamContext
from orchard.upstream.sources import Source

log = logging.getLogger("orchard.upstream")

P = TypeVar("P")

STALE_TTL = 30 * 24 * 3600  # how long a document is kept for stale-if-error and offline use
FAILURE_RETRY = 30  # seconds before failed upstreams are asked again
UNLISTED_RETRY = 30  # at most one forced refresh per document and this many seconds


def entry_key(source: Source) -> str:
    """What a source's cached answer was made under: its URL, and the file
    hosts its links were filtered by (a change to either refetches)."""
    if not source.file_hosts:
        return source.url
    return f"{source.url} {' '.join(source.file_hosts)}"


@dataclass
class Answer(Generic[P]):
    """What one source answered: ``ok`` (with ``payload``), ``not_modified``,
    ``missing`` (404/410) or ``error``."""

    status: str
    payload: P | None = None
    etag: str | None = None
    last_modified: str | None = None
    error: str = ""


@dataclass
class Entry(Generic[P]):
    """One source's last good answer."""

    url: str  # entry_key of the source when it answered (a change invalidates)
    payload: P | None = None
    etag: str | None = None
    last_modified: str | None = None
    missing: bool = False  # the source answered 404


@dataclass
class Document(Generic[P]):
    entries: dict[str, Entry[P]]  # by source name
    stale: bool = False
    fetched_at: float = 0.0

    def current(self, sources: list[Source]) -> list[tuple[Source, Entry[P]]]:
        """The entries of ``sources`` made under their present key, in order."""
        found = []
        for source in sources:
            entry = self.entries.get(source.name)
            if entry is not None and entry.url == entry_key(source):
                found.append((source, entry))
        return found


@dataclass(frozen=True)
class Codec(Generic[P]):
    """A format's payload to and from JSON values (for the shared cache)."""

    encode: Callable[[P], Any]
    decode: Callable[[Any], P]


Ask = Callable[[Source, str | None, str | None], Awaitable[Answer[P]]]
"""Ask one source for the document, with the ETag and Last-Modified of its
last answer (for If-None-Match / If-Modified-Since); never raises for an
upstream failure (answers ``error``)."""


class Documents(Generic[P]):
    """The cached documents of one format (``namespace``: its cache key space)."""

    def __init__(self, namespace: str, codec: Codec[P]) -> None:
        self.namespace = namespace
        self.codec = codec

    # --- the cache ---

    def encode(self, doc: Document[P]) -> bytes:
        # (dataclasses.asdict deep-copies every value: a fifth of a cold page's own time)
        enc = self.codec.encode
        entries = {
            name: {
                "url": e.url,
                "payload": enc(e.payload) if e.payload is not None else None,
                "etag": e.etag,
                "last_modified": e.last_modified,
                "missing": e.missing,
            }
            for name, e in doc.entries.items()
        }
        data = {"sources": entries, "stale": doc.stale, "fetched_at": doc.fetched_at}
        return json.dumps(data, separators=(",", ":")).encode()

    def decode(self, raw: bytes) -> Document[P]:
        data: dict[str, Any] = json.loads(raw)
        dec = self.codec.decode
        entries: dict[str, Entry[P]] = {}
        for name, e in data["sources"].items():
            payload = e["payload"]
            entries[name] = Entry(
                url=e["url"],
                payload=dec(payload) if payload is not None else None,
                etag=e["etag"],
                last_modified=e["last_modified"],
                missing=e["missing"],
            )
        return Document(entries, stale=data["stale"], fetched_at=data["fetched_at"])

    async def _read(self, ctx: UpstreamContext, name: str) -> Document[P] | None:
        raw = await ctx.cache.get(Category.PACKAGE_INDEX, self.namespace, f"page:{name}")
        if raw is None:
            return None
        try:
            return self.decode(raw)
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring a malformed cached %s document for %s", self.namespace, name)
            return None

    async def _is_fresh(self, ctx: UpstreamContext, name: str) -> bool:
        marker = await ctx.cache.get(Category.PACKAGE_INDEX, self.namespace, f"fresh:{name}")
        return marker is not None

    async def may_force(self, ctx: UpstreamContext, name: str) -> bool:
        """Whether a request for something not in the document of ``name``
        may refresh it now: once per ``UNLISTED_RETRY`` seconds (or the TTL,
        if shorter), so that made-up names cannot hammer the upstreams."""
        key = f"forced:{name}"
        if await ctx.cache.get(Category.PACKAGE_INDEX, self.namespace, key) is not None:
            return False
        ttl = max(1, min(UNLISTED_RETRY, ctx.settings.cache_ttl_index))
        await ctx.cache.set(Category.PACKAGE_INDEX, self.namespace, key, b"1", ttl)
        return True

    async def expire(self, ctx: UpstreamContext, name: str) -> None:
        """End the TTL of a document now (the next request revalidates it)."""
        await ctx.cache.delete(Category.PACKAGE_INDEX, self.namespace, f"fresh:{name}")

    # --- loading ---

    async def load(
        self,
        ctx: UpstreamContext,
        name: str,
        sources: list[Source],
        ask: Ask[P],
        *,
        force: bool = False,
    ) -> Document[P] | None:
        """The document of ``name`` (``stale`` set when it may be out of
        date); None when nothing is cached and the sources may not be asked.
        ``force`` revalidates even a fresh document. Raises UpstreamError
        when every source failed and nothing is cached."""
        cached = await self._read(ctx, name)
        if ctx.settings.offline or not sources:
            if cached is None:
                return None
            if cached.stale or not await self._is_fresh(ctx, name):
                return replace(cached, stale=True)
            return cached
        if cached is not None and not force and await self._is_fresh(ctx, name):
            return cached
        doc: Document[P] = await ctx.pages.run(
            f"{self.namespace}:{name}", lambda: self._refresh(ctx, name, sources, cached, ask)
        )
        return doc

    async def _ask(
        self, ctx: UpstreamContext, ask: Ask[P], source: Source, name: str, prev: Entry[P] | None
    ) -> Answer[P]:
        """One source's answer, within a total deadline (a trickling upstream
        cannot hold a request longer than one connect plus one read)."""
        etag, modified = (prev.etag, prev.last_modified) if prev else (None, None)
        deadline = ctx.settings.http_connect_timeout + ctx.settings.http_read_timeout
        try:
            async with asyncio.timeout(deadline):
                return await ask(source, etag, modified)
        except TimeoutError:
            log.warning("upstream %s too slow for %s", source.name, name)
            return Answer("error", error="timeout")

    async def _refresh(
        self,
        ctx: UpstreamContext,
        name: str,
        sources: list[Source],
        cached: Document[P] | None,
        ask: Ask[P],
    ) -> Document[P]:
        old = cached.entries if cached else {}
        keys = [entry_key(s) for s in sources]
        prevs = [
            old[s.name] if s.name in old and old[s.name].url == key else None
            for s, key in zip(sources, keys, strict=True)
        ]
        answers = await asyncio.gather(
            *(self._ask(ctx, ask, s, name, p) for s, p in zip(sources, prevs, strict=True))
        )
        entries: dict[str, Entry[P]] = {}
        failed = False
        for source, key, prev, answer in zip(sources, keys, prevs, answers, strict=True):
            if answer.status == "ok":
                entries[source.name] = Entry(key, answer.payload, answer.etag, answer.last_modified)
            elif answer.status == "missing":
                entries[source.name] = Entry(key, missing=True)
            elif answer.status == "not_modified" and prev is not None:
                entries[source.name] = prev
            else:
                failed = True
                if prev is not None:
                    entries[source.name] = prev
        if failed and not entries:
            raise UpstreamError(f"no upstream answered for {name!r} and nothing is cached")
        doc = Document(entries, stale=failed, fetched_at=time.time())
        ttl = ctx.settings.cache_ttl_index
        if failed:
            ttl = min(ttl, FAILURE_RETRY)
            log.warning(
                "serving a stale %s document for %s",
                self.namespace,
                name,
                extra={"event": "upstream_stale"},
            )
        cache, ns = ctx.cache, self.namespace
        await cache.set(Category.PACKAGE_INDEX, ns, f"page:{name}", self.encode(doc), STALE_TTL)
        await cache.set(Category.PACKAGE_INDEX, ns, f"fresh:{name}", b"1", ttl)
        return doc
