"""Caching an upstream file on first request, for every ecosystem.

The first request for an upstream URL starts one ``Transfer`` (fetch once:
concurrent requests wait for it, see ``fetch.py``). The transfer streams the
upstream body into storage staging while hashing it and, at the same time,
to the client that asked first (tee). The last chunk is held back from that
client until the upstream's hash has been checked, so a client never
receives a complete body that was not verified. A mismatch discards the
staged bytes: nothing is stored, and the client's stream is aborted (or,
when the whole file arrived before the response started, which is the case
for every file up to ``PREFETCH_BYTES``, answered with a 502). A verified
file is answered at once (a small one straight from memory: it is hashed
in memory and only staged once its client has it) while it is committed:
stored in the built-in proxy project, with the URL → artifact row
(``cached_urls``) that makes sure a URL is never fetched twice. Other
requests for the URL wait for that commit; should it fail, the client that
asked first still has good bytes, and the next request fetches again.

Only what is verified is computed before the answer: the SHA-256 (the id)
and the digests the upstream declared. The other digests and the
ecosystem's inspection of the bytes (PyPI: dependencies) follow in the
background, see ``finish.py``.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import anyio.to_thread
from fastapi import Request, Response
from fastapi.responses import StreamingResponse
from sqlalchemy import Table, bindparam, select
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession

from orchard.api.downloads import content_disposition, memory_response
from orchard.core import catalog
from orchard.core.artifacts import (
    CachedFile,
    add_cached_file,
    add_cached_file_blocking,
    artifact_columns,
    prepare_cached_file,
)
from orchard.db.base import utcnow
from orchard.db.models import Artifact, CachedUrl
from orchard.db.prebuilt import Prebuilt
from orchard.errors import NotFound, UpstreamError
from orchard.headers import served_type
from orchard.storage.base import EXTRA_DIGESTS, BlobInfo, Digests, StagedBlob
from orchard.storage.filesystem import FilesystemStore
from orchard.upstream import finish
from orchard.upstream.client import HTTPError
from orchard.upstream.context import UpstreamContext
from orchard.upstream.finish import missing_digests
from orchard.upstream.sources import without_userinfo
from orchard.upstream.urls import LinkRule

log = logging.getLogger("orchard.upstream")

PREFETCH_BYTES = 1024 * 1024  # read before answering: small files fail with a clean 502
QUEUE_CHUNKS = 32
VERIFIABLE = ("sha256", "sha512", "sha1", "md5")

# Called (in the background, see finish.py) with a path holding the stored
# bytes; returns what to run in the finishing transaction (e.g. recording
# dependencies), or None.
AfterStore = Callable[[AsyncSession, str], Awaitable[Any]]
Inspect = Callable[[Path], Awaitable[AfterStore | None]]
Respond = Callable[[Artifact], Awaitable[Response]]


@dataclass(frozen=True)
class Wanted:
    """An upstream URL and what the index said about it."""

    url: str
    hashes: dict[str, str]
    headers: dict[str, str]  # credentials for the URL's origin, if any
    rule: LinkRule | None = None  # where the upstream may send Orchard (redirects too)


@dataclass(frozen=True)
class Placement:
    """Where the cached file goes in the proxy project."""

    ecosystem: str
    package: str
    version: str
    filename: str
    package_format: str
    content_type: str = "application/octet-stream"


@dataclass(frozen=True)
class _End:
    error: BaseException | None = None


@dataclass(frozen=True)
class HeldBlob:
    """A small upstream body kept in memory and hashed, not yet staged: a
    cold file that fits in ``PREFETCH_BYTES`` is answered before its bytes
    reach storage (creating the staging file is the slowest step of a small
    file on some filesystems)."""

    info: BlobInfo
    body: bytes


def _digests_of(body: bytes, extra: frozenset[str]) -> BlobInfo:
    digests = Digests(extra=extra)
    digests.update(body)
    return digests.result()


async def _once(body: bytes) -> AsyncIterator[bytes]:
    yield body


def url_hash(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()


def mismatch(info: BlobInfo, hashes: dict[str, str]) -> str | None:
    """A message when ``info`` contradicts one of the expected ``hashes``."""
    for algo in VERIFIABLE:
        expected = hashes.get(algo)
        if expected and expected.lower() != getattr(info, algo):
            return f"{algo} {getattr(info, algo)} differs from the upstream's {expected.lower()}"
    return None


_ARTIFACTS = cast(Table, Artifact.__table__)
_CACHED_URLS = cast(Table, CachedUrl.__table__)
# Built once (db/prebuilt.py): every proxied file request runs the lookup,
# every cold fetch the upsert.
_ARTIFACT_COLUMNS = ("id", "size", "md5", "sha1", "sha512", "content_type", "ref_count")
_LOOKUP = Prebuilt(
    select(*(_ARTIFACTS.c[name] for name in _ARTIFACT_COLUMNS))
    .join(_CACHED_URLS, _CACHED_URLS.c.artifact_id == _ARTIFACTS.c.id)
    .where(_CACHED_URLS.c.url_hash == bindparam("url_hash"))
)


@functools.cache
def _remember_url(dialect: str) -> Prebuilt:
    ins = catalog.dialect_insert(dialect)
    c = _CACHED_URLS.c
    stmt = ins(_CACHED_URLS).values(
        url_hash=bindparam("url_hash"),
        url=bindparam("url"),
        artifact_id=bindparam("artifact_id"),
        ecosystem=bindparam("ecosystem"),
        fetched_at=bindparam("now", type_=c.fetched_at.type),
    )
    return Prebuilt(
        stmt.on_conflict_do_update(
            index_elements=["url_hash"],
            set_={"artifact_id": stmt.excluded.artifact_id, "fetched_at": stmt.excluded.fetched_at},
        ),
        _CACHED_URLS,
    )


def prepare(dialect: Dialect) -> None:
    """Build and compile the statements of a cold fetch at start-up (about
    20 ms that the first proxied file would otherwise wait for)."""
    _LOOKUP.prepare(dialect)
    _remember_url(dialect.name).prepare(dialect)
    prepare_cached_file(dialect)


async def cached_artifact(ctx: UpstreamContext, url: str) -> Artifact | None:
    """The artifact stored for ``url`` (a transient object without
    timestamps: one prebuilt query)."""
    rows = await ctx.db.read_rows(_LOOKUP, {"url_hash": url_hash(url)})
    if not rows:
        return None
    return Artifact(**dict(zip(_ARTIFACT_COLUMNS, rows[0], strict=True)))


class Transfer:
    """One upstream fetch in flight; see the module docstring."""

    def __init__(
        self, ctx: UpstreamContext, wanted: Wanted, place: Placement, inspect: Inspect | None
    ) -> None:
        self.ctx, self.wanted, self.place, self.inspect = ctx, wanted, place, inspect
        self.queue: asyncio.Queue[bytes | _End] = asyncio.Queue(QUEUE_CHUNKS)
        self.started = asyncio.Event()
        self.detached = False
        self.buffered = 0
        self.content_length: int | None = None
        self.verified: BlobInfo | None = None  # the whole body, hash checked
        self._ended = False  # the stream's end has been offered

    @property
    def whole(self) -> BlobInfo | None:
        """The verified body's digests while all of it is still queued
        (nothing read yet, small enough to answer from memory); else None."""
        if self.detached or self.buffered > PREFETCH_BYTES:
            return None
        return self.verified

    async def run(self) -> Artifact:
        try:
            with self.ctx.background.busy():
                artifact = await self._run()
        except BaseException as exc:
            await self._offer(_End(exc))
            raise
        else:
            await self._offer(_End())
            return artifact
        finally:
            self.started.set()

    async def _offer(self, item: bytes | _End) -> None:
        late = self._enqueue(item)
        if late is not None:
            await late

    def _enqueue(self, item: bytes | _End) -> asyncio.Future[None] | None:
        """Queue ``item`` for the client now; when the queue is full, the put
        that waits for the client to make room (to await, or not)."""
        if self.detached or self._ended:
            return None
        if isinstance(item, _End):
            self._ended = True
        try:
            self.queue.put_nowait(item)
            return None
        except asyncio.QueueFull:
            self.started.set()  # the client must start reading now
        return asyncio.ensure_future(self._put_late(item))

    async def _put_late(self, item: bytes | _End) -> None:
        try:
            await asyncio.wait_for(self.queue.put(item), self.ctx.settings.http_read_timeout)
        except TimeoutError:
            self.detach()  # the client stopped reading: finish for the cache alone

    def detach(self) -> None:
        self.detached = True
        while not self.queue.empty():
            self.queue.get_nowait()

    async def stream(self) -> AsyncIterator[bytes]:
        """The leader's response body; the last chunk waits for verification."""
        pending: bytes | None = None
        try:
            while True:
                item = await self.queue.get()
                if isinstance(item, _End):
                    if item.error is not None:
                        raise UpstreamError(f"upstream transfer of {self.place.filename} failed")
                    if pending:
                        yield pending
                    return
                if pending is not None:
                    yield pending
                pending = item
        finally:
            self.detach()

    async def _run(self) -> Artifact:
        ctx, url = self.ctx, self.wanted.url
        async with ctx.lock.hold(url_hash(url), ctx.lock_wait):
            # Another replica may have stored it meanwhile (in this process,
            # SingleFlight's grace covers the same race).
            existing = await cached_artifact(ctx, url) if ctx.replicas else None
            if (
                existing is not None
                and mismatch_free(existing, self.wanted.hashes)
                and await ctx.storage.exists(existing.id)
            ):
                return existing
            received = await self._download()
            held = received if isinstance(received, HeldBlob) else None
            staged = received if isinstance(received, StagedBlob) else None
            try:
                self._verify(received.info)
                self.verified = received.info
                # The client may have its last bytes now, while the file is stored.
                ending = self._enqueue(_End())
                self.started.set()
                try:
                    if held is not None:
                        await asyncio.sleep(0)  # its client's answer first, then storage
                        staged = await self._stage_held(held)
                        del held, received  # on disk now: not kept in memory through the commit
                    assert staged is not None
                    return await self._store(staged)
                finally:
                    if ending is not None:
                        await ending
            except BaseException as exc:
                if staged is not None:
                    await ctx.storage.discard(staged)
                if self.verified is not None and not isinstance(exc, asyncio.CancelledError):
                    log.warning(
                        "a verified upstream file was served but not stored: %s",
                        exc,
                        extra={"event": "upstream_store_failed", "file": self.place.filename},
                    )
                raise

    async def _tee(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        async for chunk in chunks:
            if not chunk:
                continue
            await self._offer(chunk)
            self.buffered += len(chunk)
            if self.buffered >= PREFETCH_BYTES:
                self.started.set()
            yield chunk

    async def _download(self) -> StagedBlob | HeldBlob:
        """The upstream's body, staged in storage, or held in memory
        (``HeldBlob``) when its Content-Length says it is small."""
        ctx, name = self.ctx, self.place.filename
        headers = {**self.wanted.headers, "Accept-Encoding": "identity"}
        digests = frozenset(self.wanted.hashes) & EXTRA_DIGESTS
        try:
            async with ctx.http.stream(
                "GET", self.wanted.url, headers=headers, rule=self.wanted.rule
            ) as response:
                if response.status_code in (404, 410):
                    raise NotFound(f"the upstream has no {name}")
                if response.status_code != 200:
                    raise UpstreamError(
                        f"the upstream answered HTTP {response.status_code} for {name}"
                    )
                length = response.headers.get("content-length", "")
                if length.isdigit() and "content-encoding" not in response.headers:
                    self.content_length = int(length)
                log.info("fetching upstream file", extra={"event": "upstream_fetch", "file": name})
                small = min(PREFETCH_BYTES, ctx.settings.max_upload_size)
                if self.content_length is not None and self.content_length <= small:
                    body = b"".join([chunk async for chunk in self._tee(response.aiter_bytes())])
                    held = True
                else:
                    staged = await ctx.storage.stage(
                        self._tee(response.aiter_bytes()),
                        max_size=ctx.settings.max_upload_size,
                        digests=digests,
                    )
                    held = False
        except HTTPError as exc:
            raise UpstreamError(
                f"fetching {name} from the upstream failed: {type(exc).__name__}"
            ) from exc
        received: StagedBlob | HeldBlob
        if held:  # hashed off the event loop, like staged bytes
            info = await anyio.to_thread.run_sync(_digests_of, body, digests)
            received = HeldBlob(info, body)
        else:
            received = staged
        if self.content_length is not None and received.info.size != self.content_length:
            if not held:
                await ctx.storage.discard(staged)
            raise UpstreamError(f"{name}: the upstream sent a truncated body")
        return received

    async def _stage_held(self, held: HeldBlob) -> StagedBlob:
        """Stage a verified body that was held in memory (its client has
        been answered: this is off the client's path)."""
        storage = self.ctx.storage
        if isinstance(storage, FilesystemStore):  # written as is, not hashed again
            return await anyio.to_thread.run_sync(
                storage.stage_bytes_blocking, held.body, held.info
            )
        wanted = frozenset(n for n in EXTRA_DIGESTS if getattr(held.info, n))
        staged = await storage.stage(_once(held.body), digests=wanted)
        if staged.info != held.info:  # the bytes changed in memory: keep nothing
            await storage.discard(staged)
            raise UpstreamError(f"{self.place.filename}: the held body changed before storing")
        return staged

    def _verify(self, info: BlobInfo) -> None:
        name = self.place.filename
        problem = mismatch(info, self.wanted.hashes)
        if problem:
            log.warning(
                "upstream file rejected: hash mismatch",
                extra={"event": "upstream_hash_mismatch", "file": name},
            )
            raise UpstreamError(f"{name}: {problem}; nothing was stored")

    def take_body(self) -> bytes:
        """The whole verified body, off the queue (see ``whole``)."""
        parts: list[bytes] = []
        while not self.queue.empty():
            item = self.queue.get_nowait()
            if isinstance(item, bytes):
                parts.append(item)
        self.detach()
        return b"".join(parts)

    async def _store(self, staged: StagedBlob) -> Artifact:
        ctx = self.ctx
        missing = frozenset(n for n in EXTRA_DIGESTS if not getattr(staged.info, n))
        copy = None
        if (missing or self.inspect) and ctx.storage.local_path(staged.info.sha256) is None:
            copy = await anyio.to_thread.run_sync(_link_copy, staged.handle)
        try:
            artifact = await self._commit(staged)
        except BaseException:
            if copy is not None:
                await anyio.to_thread.run_sync(_unlink, copy)
            raise
        finish.schedule(ctx, artifact.id, missing_digests(artifact), self.inspect, copy)
        return artifact

    async def _commit(self, staged: StagedBlob) -> Artifact:
        ctx, place = self.ctx, self.place
        project = catalog.PROXY_PROJECT
        url = self.wanted.url
        remember = {
            "url_hash": url_hash(url),
            "url": without_userinfo(url),  # a pip.conf URL may carry a token: not kept
            "artifact_id": staged.info.sha256,
            "ecosystem": place.ecosystem,
            "now": utcnow(),
        }
        try:
            project_id = ctx.project_ids.get(project)
            storage = ctx.storage
            if (
                project_id is not None
                and ctx.db.blocking_writes
                and isinstance(storage, FilesystemStore)
            ):  # the embedded default: one thread hop for the whole transaction
                cached = self._cached_file(project_id, remember, ctx.db.dialect)
                stored = await ctx.db.write_blocking(
                    lambda run: add_cached_file_blocking(run, storage, cached, staged)
                )
            else:
                async with ctx.db.transaction() as session:
                    if project_id is None:
                        project_id = (await catalog.get_project(session, project)).id
                    cached = self._cached_file(
                        project_id, remember, session.get_bind().dialect.name
                    )
                    stored = await add_cached_file(session, storage, cached, staged)
        except BaseException:
            ctx.project_ids.pop(project, None)  # e.g. a database replaced under us
            raise
        ctx.project_ids[project] = project_id
        return stored.artifact

    def _cached_file(self, project_id: int, remember: dict[str, Any], dialect: str) -> CachedFile:
        place = self.place
        return CachedFile(
            project_id=project_id,
            project_name=catalog.PROXY_PROJECT,
            package_name=place.package,
            version=place.version,
            filename=place.filename,
            package_format=place.package_format,
            content_type=place.content_type,
            also=((_remember_url(dialect), remember),),
        )


def _link_copy(handle: str) -> Path | None:
    """A second name for a staged file (kept for finishing when the blob
    will have no local path), or None when the handle is not a file."""
    copy = Path(f"{handle}.finish")
    try:
        os.link(handle, copy)
    except OSError:
        return None
    return copy


def _unlink(path: Path) -> None:
    path.unlink(missing_ok=True)


async def serve_upstream_file(
    ctx: UpstreamContext,
    request: Request,
    wanted: Wanted,
    place: Placement,
    respond: Respond,
    inspect: Inspect | None = None,
) -> Response:
    """Serve ``wanted`` from the cache, or fetch it once, store and serve it."""
    existing = await cached_artifact(ctx, wanted.url)
    if existing is not None and mismatch_free(existing, wanted.hashes):
        missing = missing_digests(existing)
        if missing:  # its finishing was lost
            finish.schedule(ctx, existing.id, missing, inspect)
        return await respond(existing)
    if ctx.settings.offline:
        raise NotFound(f"{place.filename} is not cached and Orchard is offline")
    transfer = Transfer(ctx, wanted, place, inspect)
    task, leader = ctx.files.start(url_hash(wanted.url), transfer.run)
    streaming = leader and request.method == "GET" and "range" not in request.headers
    if not streaming:
        if leader:
            transfer.detach()
        return await respond(await asyncio.shield(task))
    try:
        await transfer.started.wait()
        if task.done():
            return await respond(task.result())
    except BaseException:
        transfer.detach()
        raise
    verified = transfer.whole
    if verified is not None:
        artifact = Artifact(**artifact_columns(verified, place.content_type))
        response = memory_response(request, artifact, transfer.take_body(), place.filename)
        response.headers["X-Orchard-Cache"] = "miss"
        return response
    headers = {
        "X-Orchard-Cache": "miss",
        "Content-Disposition": content_disposition(place.filename),
    }
    if transfer.content_length is not None:
        headers["Content-Length"] = str(transfer.content_length)
    media_type = served_type(place.content_type)  # never an active type (headers.py)
    return StreamingResponse(transfer.stream(), media_type=media_type, headers=headers)


def mismatch_free(artifact: Artifact, hashes: dict[str, str]) -> bool:
    info = BlobInfo(artifact.id, artifact.size, artifact.md5, artifact.sha1, artifact.sha512)
    return mismatch(info, hashes) is None
