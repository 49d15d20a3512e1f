"""Blobs as files on a local (or mounted) filesystem.

Staging writes to ``<root>/.staging/<uuid>`` on the same filesystem, so that
``commit`` is an atomic ``link``: a reader never sees a half-written blob, and
two uploads of the same bytes race harmlessly (the second link fails with
EEXIST and its copy is dropped). All file I/O and hashing runs in worker
threads, never on the event loop.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

import anyio
import anyio.to_thread

from orchard.errors import NotFound, StorageError, StorageUploadError, TooLarge
from orchard.storage.base import (
    CHUNK_SIZE,
    EXTRA_DIGESTS,
    BlobInfo,
    Digests,
    StagedBlob,
    StoredBlob,
    blob_key,
)
from orchard.storage.chunks import rechunk, write_through


def write_all(file: BinaryIO, chunks: list[bytes]) -> None:
    """Write ``chunks`` with as few system calls as the kernel allows."""
    file.flush()
    fd = file.fileno()
    left = sum(len(chunk) for chunk in chunks)
    while chunks:
        written = os.writev(fd, chunks)
        left -= written
        if left == 0:
            return
        while written >= len(chunks[0]):  # partial: drop what went, keep the rest
            written -= len(chunks[0])
            chunks = chunks[1:]
        chunks = [memoryview(chunks[0])[written:], *chunks[1:]]  # type: ignore[list-item]


class FilesystemStore:
    name = "filesystem"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.staging = root / ".staging"
        self.parts = root / ".parts"

    @classmethod
    def from_url(cls, url: str) -> FilesystemStore:
        path = url.removeprefix("file://")
        return cls(Path(path))

    def _path(self, sha256: str) -> Path:
        return self.root / blob_key(sha256)

    def _part_path(self, key: str) -> Path:
        if ".." in key.split("/") or key.startswith("/"):
            raise StorageError(f"invalid part key {key!r}")
        return self.parts / key

    async def check(self) -> None:
        def probe() -> None:
            self.staging.mkdir(parents=True, exist_ok=True)
            self.parts.mkdir(parents=True, exist_ok=True)
            probe_file = self.staging / f"probe-{uuid.uuid4().hex}"
            probe_file.write_bytes(b"ok")
            probe_file.unlink()

        try:
            await anyio.to_thread.run_sync(probe)
        except OSError as exc:
            raise StorageError(f"storage directory {self.root} is not writable: {exc}") from exc

    async def close(self) -> None:
        return None

    async def stage(
        self,
        chunks: AsyncIterator[bytes],
        max_size: int | None = None,
        digests: frozenset[str] = EXTRA_DIGESTS,
    ) -> StagedBlob:
        path = self.staging / uuid.uuid4().hex
        hashes = Digests(extra=digests)

        files: list[BinaryIO] = []  # opened by the first write (one thread hop less)

        def opened() -> BinaryIO:
            if not files:
                self.staging.mkdir(parents=True, exist_ok=True)
                files.append(open(path, "wb"))  # noqa: SIM115
            return files[0]

        def write(group: list[bytes]) -> None:
            # One system call per group: each call into the kernel (or into
            # hashlib) lets go of the GIL, and taking it back costs while the
            # event loop is busy receiving the next chunks.
            for chunk in group:
                hashes.update(chunk)
            write_all(opened(), group)

        def close() -> None:
            opened().close()  # an empty body is a file too

        try:
            try:
                await write_through(chunks, write, CHUNK_SIZE, max_size, finish=close)
            finally:
                if files and not files[0].closed:  # no write is running (write_through waits)
                    with anyio.CancelScope(shield=True):
                        await anyio.to_thread.run_sync(files[0].close)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                path.unlink()
            if isinstance(exc, OSError):
                raise StorageUploadError(f"cannot write to storage: {exc}") from exc
            raise
        return StagedBlob(info=hashes.result(), handle=str(path))

    def stage_bytes_blocking(self, data: bytes, info: BlobInfo) -> StagedBlob:
        """Stage bytes already in memory and hashed (``info`` describes them),
        in the calling thread."""
        path = self.staging / uuid.uuid4().hex
        try:
            self.staging.mkdir(parents=True, exist_ok=True)
            with open(path, "wb") as file:
                file.write(data)
        except OSError as exc:
            with contextlib.suppress(OSError):
                path.unlink()
            raise StorageUploadError(f"cannot write to storage: {exc}") from exc
        return StagedBlob(info=info, handle=str(path))

    def commit_blocking(self, staged: StagedBlob) -> bool:
        """``commit`` in the calling thread (for a caller already off the
        event loop)."""
        target = self._path(staged.info.sha256)
        source = Path(staged.handle)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(source, target)
                existed = False
            except FileExistsError:
                existed = True
            source.unlink(missing_ok=True)
        except OSError as exc:
            raise StorageUploadError(f"cannot store blob: {exc}") from exc
        return existed

    async def commit(self, staged: StagedBlob) -> bool:
        return await anyio.to_thread.run_sync(self.commit_blocking, staged)

    def discard_blocking(self, staged: StagedBlob) -> None:
        # Best effort: the storage may be the thing that failed.
        with contextlib.suppress(OSError):
            Path(staged.handle).unlink(missing_ok=True)

    async def discard(self, staged: StagedBlob) -> None:
        await anyio.to_thread.run_sync(self.discard_blocking, staged)

    async def purge_staging(self, older_than: datetime) -> int:
        return await anyio.to_thread.run_sync(purge_old_files, self.staging, older_than, "")

    async def exists(self, sha256: str) -> bool:
        return await anyio.to_thread.run_sync(self._path(sha256).is_file)

    async def size(self, sha256: str) -> int:
        try:
            return (await anyio.to_thread.run_sync(self._path(sha256).stat)).st_size
        except FileNotFoundError as exc:
            raise NotFound(f"artifact {sha256} is not in storage") from exc

    async def open(
        self, sha256: str, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        async for chunk in _read_file(self._path(sha256), start, end):
            yield chunk

    async def delete(self, sha256: str) -> None:
        await anyio.to_thread.run_sync(lambda: self._path(sha256).unlink(missing_ok=True))

    async def list(self) -> AsyncIterator[StoredBlob]:
        base = self.root / "sha256"

        def scan() -> list[StoredBlob]:
            found: list[StoredBlob] = []
            if not base.is_dir():
                return found
            for dirpath, _dirs, files in os.walk(base):
                for name in files:
                    st = os.stat(os.path.join(dirpath, name))
                    modified = datetime.fromtimestamp(st.st_mtime, UTC)
                    found.append(StoredBlob(sha256=name, size=st.st_size, modified=modified))
            return found

        for blob in await anyio.to_thread.run_sync(scan):
            yield blob

    def local_path(self, sha256: str) -> Path | None:
        return self._path(sha256)

    async def presigned_url(self, sha256: str, filename: str, ttl: int) -> str | None:
        return None

    async def put_part(self, key: str, chunks: AsyncIterator[bytes], max_size: int) -> int:
        path = self._part_path(key)
        tmp = path.with_name(path.name + f".{uuid.uuid4().hex}.tmp")
        size = 0
        await anyio.to_thread.run_sync(lambda: path.parent.mkdir(parents=True, exist_ok=True))
        fh = await anyio.to_thread.run_sync(lambda: open(tmp, "wb"))  # noqa: SIM115
        try:
            async for chunk in rechunk(chunks, CHUNK_SIZE):
                size += len(chunk)
                if size > max_size:
                    raise TooLarge(f"chunk exceeds the limit of {max_size} bytes")
                await anyio.to_thread.run_sync(fh.write, chunk)
            await anyio.to_thread.run_sync(fh.close)
            await anyio.to_thread.run_sync(os.replace, tmp, path)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(fh.close)
            tmp.unlink(missing_ok=True)
            raise
        return size

    async def open_part(self, key: str) -> AsyncIterator[bytes]:
        async for chunk in _read_file(self._part_path(key), 0, None):
            yield chunk

    async def delete_parts(self, prefix: str) -> None:
        path = self._part_path(prefix.rstrip("/"))

        def remove() -> None:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)

        await anyio.to_thread.run_sync(remove)


def purge_old_files(folder: Path, older_than: datetime, prefix: str) -> int:
    removed = 0
    cutoff = older_than.timestamp()
    if not folder.is_dir():
        return 0
    for entry in os.scandir(folder):
        try:
            if entry.is_file() and entry.name.startswith(prefix) and entry.stat().st_mtime < cutoff:
                os.unlink(entry.path)
                removed += 1
        except OSError:
            continue
    return removed


async def _read_file(path: Path, start: int, end: int | None) -> AsyncIterator[bytes]:
    try:
        fh = await anyio.to_thread.run_sync(lambda: open(path, "rb"))  # noqa: SIM115
    except FileNotFoundError as exc:
        raise NotFound(f"{path.name} is not in storage") from exc
    try:
        await anyio.to_thread.run_sync(fh.seek, start)
        remaining = None if end is None else end - start + 1
        while remaining is None or remaining > 0:
            want = CHUNK_SIZE if remaining is None else min(CHUNK_SIZE, remaining)
            chunk = await anyio.to_thread.run_sync(fh.read, want)
            if not chunk:
                break
            if remaining is not None:
                remaining -= len(chunk)
            yield chunk
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(fh.close)
