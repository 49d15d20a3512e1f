"""Upstream project pages: asked of every source, cached with TTL,
revalidation and stale-if-error (the shared ``upstream/documents.py``),
and merged in priority order (each filename from the first source that
lists it).

The cache keys live under the namespace ``pypi`` (category PACKAGE_INDEX):
``page:{name}``, ``fresh:{name}`` and ``forced:{name}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from orchard.protocols.pypi.upstream import UpstreamFile, fetch_source_page
from orchard.upstream.context import UpstreamContext
from orchard.upstream.documents import Answer, Codec, Document, Documents
from orchard.upstream.sources import Source

PROTOCOL = "pypi"


def _encode(files: list[UpstreamFile]) -> Any:
    return [f.to_json() for f in files]


def _decode(value: Any) -> list[UpstreamFile]:
    return [UpstreamFile.from_json(f) for f in value]


PAGES: Documents[list[UpstreamFile]] = Documents(PROTOCOL, Codec(_encode, _decode))


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


def merge(doc: Document[list[UpstreamFile]], sources: list[Source]) -> MergedIndex | None:
    files: list[tuple[Source, UpstreamFile]] = []
    seen: set[str] = set()
    present = False
    for source, entry in doc.current(sources):
        present = present or not entry.missing
        for f in entry.payload or ():
            if f.filename not in seen:
                seen.add(f.filename)
                files.append((source, f))
    return MergedIndex(files, doc.stale) if present else None


async def may_force(ctx: UpstreamContext, name: str) -> bool:
    """Whether a request for a file not on the page of ``name`` may refresh it now."""
    return await PAGES.may_force(ctx, name)


async def expire(ctx: UpstreamContext, name: str) -> None:
    """End the TTL of a page now (the next request revalidates it)."""
    await PAGES.expire(ctx, name)


async def load(ctx: UpstreamContext, name: str, *, force: bool = False) -> MergedIndex | None:
    """The merged upstream page of normalised ``name``; None when no upstream
    has it. ``force`` revalidates even a fresh page (an unlisted file)."""
    sources = await ctx.sources(PROTOCOL)

    async def ask(
        source: Source, etag: str | None, modified: str | None
    ) -> Answer[list[UpstreamFile]]:
        headers = ctx.headers_for(source, source.url)
        return await fetch_source_page(ctx.http, source, name, headers, etag, modified)

    doc = await PAGES.load(ctx, name, sources, ask, force=force)
    return None if doc is None else merge(doc, sources)
