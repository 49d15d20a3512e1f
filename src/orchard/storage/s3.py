"""Blobs as objects in an S3-compatible bucket (AWS S3, MinIO, Ceph, R2...).

Objects live at ``<prefix>sha256/ab/cd/<sha256>``, parts at
``<prefix>parts/<key>``. Staging spools the stream to a local temporary file
while hashing, because the object key is the hash and is only known at the
end; ``commit`` then uploads it with boto3's managed (multipart) transfer
unless an object with that key already exists. boto3 is synchronous: every
call, and all file I/O and hashing, runs in a worker thread. Existence checks
and writes retry transient failures (connection errors, 5xx, throttling) on
top of botocore's own retries.
"""

from __future__ import annotations

import os
import tempfile
import urllib.parse
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import anyio.to_thread
import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from orchard.errors import (
    ConfigurationError,
    ExistenceCheckError,
    NotFound,
    OrchardError,
    StorageError,
    StorageUploadError,
    TooLarge,
)
from orchard.settings import Settings
from orchard.storage.base import (
    CHUNK_SIZE,
    EXTRA_DIGESTS,
    Digests,
    StagedBlob,
    StoredBlob,
    blob_key,
)
from orchard.storage.chunks import rechunk
from orchard.storage.filesystem import purge_old_files

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import DeleteTypeDef, ObjectIdentifierTypeDef

T = TypeVar("T")

_MISSING_CODES = {"404", "NoSuchKey", "NotFound"}
_TRANSIENT_CODES = {"Throttling", "ThrottlingException", "SlowDown", "RequestTimeout"}
_TRANSIENT_CODES |= {"RequestLimitExceeded", "InternalError", "ServiceUnavailable"}
_PART_SIZE = 8 * 1024 * 1024  # multipart threshold and part size of uploads
# A download is read from S3 in pieces this small, one worker-thread hop
# each. granian queues about eight pieces per connection before it stops
# asking for more, so a client that reads slowly makes the server hold some
# 130 KB, never the object: 1 MiB pieces held 7 MB per slow reader of an
# 8 MB file, 64 KiB pieces 570 KB (tests/integration/test_slow_clients.py).
READ_SIZE = 16 * 1024


def _status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def _is_missing(exc: BaseException) -> bool:
    return isinstance(exc, ClientError) and (
        exc.response.get("Error", {}).get("Code") in _MISSING_CODES or _status(exc) == 404
    )


def _is_transient(exc: BaseException | None) -> bool:
    """Worth another try: the network, the server's 5xx, or throttling."""
    if isinstance(exc, BotoConnectionError | HTTPClientError):
        return True
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        return _status(exc) >= 500 or _status(exc) == 429 or code in _TRANSIENT_CODES
    # boto3's managed upload re-raises a ClientError as S3UploadFailedError.
    return exc is not None and exc.__context__ is not exc and _is_transient(exc.__context__)


async def _remove(path: str | Path) -> None:
    """Delete a temporary file, even while the caller is being cancelled."""
    with anyio.CancelScope(shield=True):
        await anyio.to_thread.run_sync(lambda: Path(path).unlink(missing_ok=True))


class S3Store:
    name = "s3"

    def __init__(
        self,
        client: S3Client,
        bucket: str,
        prefix: str = "",
        *,
        staging_dir: Path | None = None,
        transfer: TransferConfig | None = None,
        attempts: int = 3,
        backoff: float = 0.2,
    ) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.staging_dir = staging_dir
        self.transfer = transfer or TransferConfig(
            multipart_threshold=_PART_SIZE, multipart_chunksize=_PART_SIZE, max_concurrency=4
        )
        self.attempts = attempts
        self.backoff = backoff

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        staging_dir: Path | None = None,
        max_attempts: int = 5,
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
    ) -> S3Store:
        url = settings.effective_storage_url
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme != "s3" or not parsed.netloc:
            raise ConfigurationError(
                f"ORCHARD_STORAGE_URL={url!r}: name the bucket, as in s3://bucket/prefix"
            )
        session = boto3.session.Session(region_name=settings.s3_region)
        if session.get_credentials() is None:
            raise ConfigurationError(
                f"ORCHARD_STORAGE_URL={url!r} needs S3 credentials: set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY (or an AWS profile or instance role)"
            )
        config = Config(
            retries={"max_attempts": max_attempts, "mode": "standard"},
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            max_pool_connections=50,
            # S3-compatible servers (MinIO, Ceph) rarely serve virtual-host buckets.
            s3={"addressing_style": "path"} if settings.s3_endpoint_url else None,
        )
        client = session.client("s3", endpoint_url=settings.s3_endpoint_url, config=config)
        return cls(client, parsed.netloc, parsed.path, staging_dir=staging_dir)

    def _key(self, sha256: str) -> str:
        return self.prefix + blob_key(sha256)

    def _part_key(self, key: str) -> str:
        if ".." in key.split("/") or key.startswith("/"):
            raise StorageError(f"invalid part key {key!r}")
        return f"{self.prefix}parts/{key}"

    async def _call(
        self, call: Callable[[], T], error: type[StorageError], what: str, retry: bool = False
    ) -> T:
        """Run a blocking boto3 call in a worker thread, mapping failures to ``error``."""
        attempt = 1
        while True:
            try:
                return await anyio.to_thread.run_sync(call)
            except OrchardError:
                raise
            except Exception as exc:
                if retry and attempt < self.attempts and _is_transient(exc):
                    await anyio.sleep(self.backoff * 2 ** (attempt - 1))
                    attempt += 1
                    continue
                raise error(f"S3 bucket {self.bucket!r}: cannot {what}: {exc}") from exc

    async def check(self) -> None:
        try:
            await anyio.to_thread.run_sync(lambda: self.client.head_bucket(Bucket=self.bucket))
        except Exception as exc:
            raise StorageError(
                f"cannot use S3 bucket {self.bucket!r} at {self.client.meta.endpoint_url} "
                f"(check ORCHARD_STORAGE_URL, ORCHARD_S3_ENDPOINT_URL and the credentials): {exc}"
            ) from exc

    async def close(self) -> None:
        self.client.close()

    async def _spool(
        self, chunks: AsyncIterator[bytes], max_size: int | None, digests: Digests | None
    ) -> tuple[Path, int]:
        """Write a stream to a new temporary file (hashing it when asked)."""

        def create() -> tuple[int, str]:
            if self.staging_dir is not None:
                self.staging_dir.mkdir(parents=True, exist_ok=True)
            return tempfile.mkstemp(prefix="orchard-", dir=self.staging_dir)

        try:
            fd, name = await anyio.to_thread.run_sync(create)
        except OSError as exc:
            raise StorageUploadError(f"cannot create a staging file: {exc}") from exc
        fh = os.fdopen(fd, "wb")
        size = 0

        def write(chunk: bytes) -> None:
            fh.write(chunk)
            if digests is not None:
                digests.update(chunk)

        try:
            try:
                async for chunk in rechunk(chunks, CHUNK_SIZE):
                    if max_size is not None and size + len(chunk) > max_size:
                        raise TooLarge(f"body exceeds the limit of {max_size} bytes")
                    await anyio.to_thread.run_sync(write, chunk)
                    size += len(chunk)
            finally:
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(fh.close)
        except BaseException as exc:
            await _remove(name)
            if isinstance(exc, OSError):
                raise StorageUploadError(f"cannot write a staging file: {exc}") from exc
            raise
        return Path(name), size

    async def stage(
        self,
        chunks: AsyncIterator[bytes],
        max_size: int | None = None,
        digests: frozenset[str] = EXTRA_DIGESTS,
    ) -> StagedBlob:
        hashes = Digests(extra=digests)
        path, _size = await self._spool(chunks, max_size, hashes)
        return StagedBlob(info=hashes.result(), handle=str(path))

    def _upload(self, path: Path, key: str) -> None:
        self.client.upload_file(
            str(path),
            self.bucket,
            key,
            ExtraArgs={"ContentType": "application/octet-stream"},
            Config=self.transfer,
        )

    async def commit(self, staged: StagedBlob) -> bool:
        """Upload a staged blob unless it exists. The staged file is gone afterwards,
        whatever the outcome."""
        key = self._key(staged.info.sha256)
        path = Path(staged.handle)
        try:
            if await self._exists(key):
                return True
            what = f"upload {staged.info.sha256}"
            await self._call(lambda: self._upload(path, key), StorageUploadError, what, True)
            return False
        finally:
            await _remove(path)

    async def discard(self, staged: StagedBlob) -> None:
        await _remove(staged.handle)

    async def purge_staging(self, older_than: datetime) -> int:
        folder = Path(self.staging_dir or tempfile.gettempdir())
        return await anyio.to_thread.run_sync(purge_old_files, folder, older_than, "orchard-")

    def _head(self, key: str) -> int | None:
        try:
            return self.client.head_object(Bucket=self.bucket, Key=key)["ContentLength"]
        except ClientError as exc:
            if _is_missing(exc):
                return None
            raise

    async def _exists(self, key: str) -> bool:
        found = await self._call(lambda: self._head(key), ExistenceCheckError, f"check {key}", True)
        return found is not None

    async def exists(self, sha256: str) -> bool:
        return await self._exists(self._key(sha256))

    async def size(self, sha256: str) -> int:
        found = await self._call(lambda: self._head(self._key(sha256)), StorageError, "stat")
        if found is None:
            raise NotFound(f"artifact {sha256} is not in storage")
        return found

    async def open(
        self, sha256: str, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        async for chunk in self._read(self._key(sha256), start, end, f"artifact {sha256}"):
            yield chunk

    async def _read(
        self, key: str, start: int, end: int | None, label: str
    ) -> AsyncIterator[bytes]:
        extra: dict[str, Any] = {}
        if start > 0 or end is not None:
            extra["Range"] = f"bytes={start}-{'' if end is None else end}"
        try:
            response = await anyio.to_thread.run_sync(
                lambda: self.client.get_object(Bucket=self.bucket, Key=key, **extra)
            )
        except (ClientError, BotoCoreError) as exc:
            if _is_missing(exc):
                raise NotFound(f"{label} is not in storage") from exc
            if isinstance(exc, ClientError) and exc.response["Error"].get("Code") == "InvalidRange":
                return  # start past the end: nothing to read, as from a file
            raise StorageError(f"S3 bucket {self.bucket!r}: cannot read {key}: {exc}") from exc
        body = response["Body"]
        try:
            while True:
                try:
                    chunk = await anyio.to_thread.run_sync(body.read, READ_SIZE)
                except (BotoCoreError, OSError) as exc:
                    raise StorageError(f"S3 bucket {self.bucket!r}: reading {key}: {exc}") from exc
                if not chunk:
                    break
                yield chunk
        finally:
            body.close()

    async def delete(self, sha256: str) -> None:
        key = self._key(sha256)
        await self._call(
            lambda: self.client.delete_object(Bucket=self.bucket, Key=key), StorageError, "delete"
        )

    async def _keys(self, prefix: str) -> AsyncIterator[dict[str, Any]]:
        """Every object under ``prefix``, one page (one request) at a time."""
        pages = iter(
            self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        )
        while True:
            page = await self._call(lambda: next(pages, None), StorageError, f"list {prefix}")
            if page is None:
                return
            for obj in page.get("Contents", []):
                yield dict(obj)

    async def list(self) -> AsyncIterator[StoredBlob]:
        async for obj in self._keys(self.prefix + "sha256/"):
            yield StoredBlob(
                sha256=obj["Key"].rsplit("/", 1)[-1], size=obj["Size"], modified=obj["LastModified"]
            )

    def local_path(self, sha256: str) -> Path | None:
        return None

    async def presigned_url(self, sha256: str, filename: str, ttl: int) -> str | None:
        quoted = urllib.parse.quote(filename, safe="")
        ascii_name = filename.encode("ascii", "replace").decode().replace('"', "")
        disposition = f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quoted}"
        params = {"Bucket": self.bucket, "Key": self._key(sha256)}
        params["ResponseContentDisposition"] = disposition
        sign = partial(self.client.generate_presigned_url, "get_object", params, ttl)
        return await self._call(sign, StorageError, "sign a URL")

    async def put_part(self, key: str, chunks: AsyncIterator[bytes], max_size: int) -> int:
        target = self._part_key(key)
        path, size = await self._spool(chunks, max_size, None)
        try:
            what = f"upload part {key}"
            await self._call(lambda: self._upload(path, target), StorageUploadError, what, True)
        finally:
            await _remove(path)
        return size

    async def open_part(self, key: str) -> AsyncIterator[bytes]:
        async for chunk in self._read(self._part_key(key), 0, None, f"part {key}"):
            yield chunk

    async def delete_parts(self, prefix: str) -> None:
        # As on the filesystem: the part named ``prefix`` and every part below it.
        base = self._part_key(prefix.rstrip("/"))
        below = base.rstrip("/") + "/"
        keys = [
            o["Key"]
            async for o in self._keys(base)
            if o["Key"] == base or o["Key"].startswith(below)
        ]
        for i in range(0, len(keys), 1000):  # the most one request may delete
            objects: list[ObjectIdentifierTypeDef] = [{"Key": k} for k in keys[i : i + 1000]]
            batch: DeleteTypeDef = {"Objects": objects, "Quiet": True}
            call = partial(self.client.delete_objects, Bucket=self.bucket, Delete=batch)
            response = await self._call(call, StorageError, "delete parts")
            if response.get("Errors"):
                raise StorageError(f"S3 bucket {self.bucket!r}: cannot delete parts: {response}")
