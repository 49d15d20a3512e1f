"""Fetch once: caching an upstream file on first request, for every format.

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
and the running hashes the upstream's digest needs (``digests.py``: hex
digests, SRI integrity, or Go's ``h1:`` read from the complete file). The
other digests and the format's inspection of the bytes (PyPI: dependencies)
follow in the background, see ``finish.py``. Storing is ``stored.py``; the
answer to the client (HTTP) is built in ``protocols/fetched.py``: nothing
here knows a web framework or a format.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import anyio.to_thread
from sqlalchemy.ext.asyncio import AsyncSession

from orchard.db.models import Artifact
from orchard.errors import NotFound, UpstreamError
from orchard.storage.base import EXTRA_DIGESTS, BlobInfo, Digests, StagedBlob
from orchard.storage.filesystem import FilesystemStore
from orchard.upstream import finish
from orchard.upstream.client import HTTPError
from orchard.upstream.context import UpstreamContext
from orchard.upstream.digests import Digest, HexDigests
from orchard.upstream.finish import missing_digests
from orchard.upstream.stored import Placement, cached_artifact, store_cached_file, url_hash
from orchard.upstream.urls import LinkRule

log = logging.getLogger("orchard.upstream")

PREFETCH_BYTES = 1024 * 1024  # read before answering: small files fail with a clean 502
QUEUE_CHUNKS = 32

# Called (in the background, see finish.py) with a path holding the stored
# bytes; returns what to run in the finishing transaction (e.g. recording
# dependencies), or None.
AfterStore = Callable[[AsyncSession, str], Awaitable[Any]]
Inspect = Callable[[Path], Awaitable[AfterStore | None]]


@dataclass(frozen=True)
class Wanted:
    """An upstream URL and the digest its format's index gave for it."""

    url: str
    digest: Digest = field(default_factory=HexDigests)
    headers: dict[str, str] = field(default_factory=dict)  # credentials for the URL's origin
    rule: LinkRule | None = None  # where the upstream may send Orchard (redirects too)


@dataclass(frozen=True)
class Found:
    """A proxied file to answer: stored (an artifact), or arriving (the
    ``Transfer`` of the request that started its fetch)."""

    filename: str
    got: Artifact | Transfer


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
                and stored_matches(existing, self.wanted.digest)
                and await ctx.storage.exists(existing.id)
            ):
                return existing
            received = await self._download()
            held = received if isinstance(received, HeldBlob) else None
            staged = received if isinstance(received, StagedBlob) else None
            try:
                await self._verify(received)
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
        digests = self.wanted.digest.streaming & EXTRA_DIGESTS
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

    async def _verify(self, received: StagedBlob | HeldBlob) -> None:
        """Refuse a body that contradicts the upstream's digest: from the
        running hashes, then (a digest of the whole file, such as Go's
        ``h1:``) from the complete bytes, before anything is recorded."""
        name, digest = self.place.filename, self.wanted.digest
        problem = digest.check(received.info)
        if problem is None and digest.whole_file:
            problem = await anyio.to_thread.run_sync(_check_file, digest, received)
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
        return await store_cached_file(self.ctx, self.wanted.url, self.place, staged)


def _check_file(digest: Digest, received: StagedBlob | HeldBlob) -> str | None:
    file: BinaryIO
    if isinstance(received, HeldBlob):
        return digest.check_file(io.BytesIO(received.body))
    try:
        file = open(received.handle, "rb")  # noqa: SIM115 (closed below)
    except OSError:
        return "the received file cannot be read back to check its digest"
    with file:
        return digest.check_file(file)


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


async def fetch_once(
    ctx: UpstreamContext,
    wanted: Wanted,
    place: Placement,
    *,
    stream: bool,
    inspect: Inspect | None = None,
) -> Artifact | Transfer:
    """``wanted`` from the cache, or fetched once, verified and stored.

    With ``stream`` (the caller can send the body as it arrives), the
    request that starts the fetch gets the ``Transfer`` once its first bytes
    are in (``whole`` when all of it is, verified; else ``stream()``); every
    other caller gets the stored artifact."""
    existing = await cached_artifact(ctx, wanted.url)
    if existing is not None and stored_matches(existing, wanted.digest):
        missing = missing_digests(existing)
        if missing:  # its finishing was lost
            finish.schedule(ctx, existing.id, missing, inspect)
        return existing
    if ctx.settings.offline:
        raise NotFound(f"{place.filename} is not cached and Orchard is offline")
    transfer = Transfer(ctx, wanted, place, inspect)
    task, leader = ctx.files.start(url_hash(wanted.url), transfer.run)
    if not (leader and stream):
        if leader:
            transfer.detach()
        artifact: Artifact = await asyncio.shield(task)
        return artifact
    try:
        await transfer.started.wait()
        if task.done():
            done: Artifact = task.result()
            return done
    except BaseException:
        transfer.detach()
        raise
    return transfer


def stored_matches(artifact: Artifact, digest: Digest) -> bool:
    """Whether a stored artifact agrees with the digest the upstream gives
    now (a digest of the whole file was checked when it was stored)."""
    info = BlobInfo(artifact.id, artifact.size, artifact.md5, artifact.sha1, artifact.sha512)
    return digest.check(info) is None
