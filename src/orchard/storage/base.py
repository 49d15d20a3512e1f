"""What every artifact storage backend provides.

Artifacts are addressed by the SHA-256 hex of their content and live at
``sha256/ab/cd/<sha256>`` under the backend's root. A blob is written once
and never modified. Writing is two steps so that the database can decide in
between: ``stage`` streams bytes to a private temporary place while hashing
them, ``commit`` moves a staged blob into place (or drops it when the blob
already exists: deduplication). Besides blobs, backends keep *parts*: opaque
objects under a key, used for resumable upload chunks.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol, runtime_checkable

CHUNK_SIZE = 1024 * 1024
PARALLEL_THRESHOLD = 256 * 1024
_HASH_POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="orchard-hash")


def _update_pair(a: hashlib._Hash, b: hashlib._Hash, chunk: bytes) -> None:
    a.update(chunk)
    b.update(chunk)


def blob_key(sha256: str) -> str:
    """The relative key of an artifact's blob."""
    return f"sha256/{sha256[:2]}/{sha256[2:4]}/{sha256}"


EXTRA_DIGESTS = frozenset({"md5", "sha1", "sha512"})  # besides SHA-256, the id


def _new_hash(name: str) -> hashlib._Hash:
    return hashlib.new(name, usedforsecurity=name == "sha512")


@dataclass
class Digests:
    """Running hashes of a stream: SHA-256 (the id) and, unless ``extra``
    names fewer, MD5, SHA-1 and SHA-512. A digest left out is "" in the
    result (the caching proxy computes only what it verifies before answering
    and the rest afterwards, see ``upstream/finish.py``)."""

    size: int = 0
    extra: frozenset[str] = EXTRA_DIGESTS
    _sha256: hashlib._Hash = field(default_factory=hashlib.sha256)
    _others: dict[str, hashlib._Hash] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._others = {name: _new_hash(name) for name in sorted(self.extra & EXTRA_DIGESTS)}

    def update(self, chunk: bytes) -> None:
        """Feed a chunk. Large chunks are hashed on two cores at once when all
        four digests are wanted: hashlib releases the GIL, and four digests in
        a row would cap uploads near the speed of the slowest pair."""
        self.size += len(chunk)
        others = self._others
        if len(others) < 3 or len(chunk) < PARALLEL_THRESHOLD:
            self._sha256.update(chunk)
            for h in others.values():
                h.update(chunk)
            return
        # Balanced pairs: MD5 and SHA-512 are the slow ones, SHA-256 and SHA-1
        # (hardware-assisted) the fast ones.
        other = _HASH_POOL.submit(_update_pair, others["sha512"], others["sha1"], chunk)
        others["md5"].update(chunk)
        self._sha256.update(chunk)
        other.result()

    def result(self) -> BlobInfo:
        digest = {name: h.hexdigest() for name, h in self._others.items()}
        return BlobInfo(
            sha256=self._sha256.hexdigest(),
            size=self.size,
            md5=digest.get("md5", ""),
            sha1=digest.get("sha1", ""),
            sha512=digest.get("sha512", ""),
        )


@dataclass(frozen=True)
class BlobInfo:
    sha256: str
    size: int
    md5: str
    sha1: str
    sha512: str


@dataclass
class StagedBlob:
    """Bytes received and hashed, not yet visible under their id."""

    info: BlobInfo
    handle: str  # backend-specific: a temp path or key


@dataclass(frozen=True)
class StoredBlob:
    sha256: str
    size: int
    modified: datetime


@runtime_checkable
class ArtifactStore(Protocol):
    """The storage role. Implementations: filesystem.py, s3.py."""

    name: str

    async def stage(
        self,
        chunks: AsyncIterator[bytes],
        max_size: int | None = None,
        digests: frozenset[str] = EXTRA_DIGESTS,
    ) -> StagedBlob:
        """Stream ``chunks`` to a temporary place while hashing: SHA-256 and
        the ``digests`` named (of MD5, SHA-1, SHA-512; the others are "").

        Raises TooLarge past ``max_size`` (and keeps nothing), StorageUploadError
        when the backend fails.
        """
        ...

    async def commit(self, staged: StagedBlob) -> bool:
        """Make a staged blob visible under its sha256. Returns True when the
        blob already existed (the staged copy is dropped: deduplication)."""
        ...

    async def discard(self, staged: StagedBlob) -> None:
        """Drop a staged blob that will not be committed."""
        ...

    async def exists(self, sha256: str) -> bool: ...

    async def size(self, sha256: str) -> int:
        """Size in bytes; NotFound when absent."""
        ...

    def open(self, sha256: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """Stream bytes ``start``..``end`` (inclusive end, None = to the end)."""
        ...

    async def delete(self, sha256: str) -> None:
        """Remove a blob; absent blobs are not an error."""
        ...

    def list(self) -> AsyncIterator[StoredBlob]:
        """Every blob in the store."""
        ...

    def local_path(self, sha256: str) -> Path | None:
        """A filesystem path the server may hand to the kernel, or None."""
        ...

    async def presigned_url(self, sha256: str, filename: str, ttl: int) -> str | None:
        """A time-limited direct download URL, or None when unsupported."""
        ...

    async def put_part(self, key: str, chunks: AsyncIterator[bytes], max_size: int) -> int:
        """Store an opaque part under ``key``; returns its size."""
        ...

    def open_part(self, key: str) -> AsyncIterator[bytes]: ...

    async def delete_parts(self, prefix: str) -> None:
        """Remove the part ``prefix`` and every part below it (a whole path segment)."""
        ...

    async def purge_staging(self, older_than: datetime) -> int:
        """Remove staged copies last written before ``older_than`` (left by
        uploads that died without cleaning up); returns how many."""
        ...

    async def check(self) -> None:
        """Raise StorageError when the backend cannot be used."""
        ...

    async def close(self) -> None: ...
