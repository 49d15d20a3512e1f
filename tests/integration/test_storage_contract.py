"""The storage contract: one suite, run against every ArtifactStore backend.

The ``store`` fixture (tests/integration/conftest.py) is the filesystem store
and an S3 store on a moto server in turn. S3-only behaviour (configuration,
retries, reachability) is tested at the end.
"""

from __future__ import annotations

import hashlib
import os
import socket
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from botocore.exceptions import EndpointConnectionError

from orchard.errors import (
    ConfigurationError,
    ExistenceCheckError,
    NotFound,
    StorageError,
    StorageUploadError,
    TooLarge,
)
from orchard.settings import Settings
from orchard.storage.base import ArtifactStore
from orchard.storage.filesystem import FilesystemStore
from orchard.storage.s3 import S3Store


async def stream(data: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


async def read(chunks: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in chunks])


async def put(store: ArtifactStore, data: bytes) -> str:
    staged = await store.stage(stream(data))
    await store.commit(staged)
    return staged.info.sha256


def staged_files(store: ArtifactStore) -> list[Path]:
    if isinstance(store, FilesystemStore):
        folder: Path | None = store.staging
    else:
        folder = cast(S3Store, store).staging_dir
    assert folder is not None
    return list(folder.iterdir()) if folder.exists() else []


async def blobs(store: ArtifactStore) -> dict[str, int]:
    return {blob.sha256: blob.size async for blob in store.list()}


# --- The contract ---------------------------------------------------------------------------


async def test_check_passes(store: ArtifactStore) -> None:
    await store.check()
    assert isinstance(store, ArtifactStore)


async def test_stage_and_commit_compute_every_digest(store: ArtifactStore) -> None:
    data = os.urandom(300_000)
    staged = await store.stage(stream(data, 1000))
    info = staged.info
    assert info.size == len(data)
    assert info.sha256 == hashlib.sha256(data).hexdigest()
    assert info.md5 == hashlib.md5(data).hexdigest()
    assert info.sha1 == hashlib.sha1(data).hexdigest()
    assert info.sha512 == hashlib.sha512(data).hexdigest()
    assert not await store.exists(info.sha256)

    assert await store.commit(staged) is False
    assert await store.exists(info.sha256)
    assert await store.size(info.sha256) == len(data)
    assert await read(store.open(info.sha256)) == data
    assert staged_files(store) == []


async def test_empty_blob(store: ArtifactStore) -> None:
    staged = await store.stage(stream(b""))
    assert staged.info.size == 0
    assert staged.info.sha256 == hashlib.sha256(b"").hexdigest()
    await store.commit(staged)
    assert await store.size(staged.info.sha256) == 0
    assert await read(store.open(staged.info.sha256)) == b""


async def test_commit_of_existing_blob_deduplicates(store: ArtifactStore) -> None:
    data = b"the same bytes twice"
    first = await store.stage(stream(data))
    second = await store.stage(stream(data))
    assert await store.commit(first) is False
    assert await store.commit(second) is True
    assert await blobs(store) == {first.info.sha256: len(data)}
    assert staged_files(store) == []


async def test_discard_leaves_nothing(store: ArtifactStore) -> None:
    staged = await store.stage(stream(b"never committed"))
    await store.discard(staged)
    await store.discard(staged)  # twice is harmless
    assert staged_files(store) == []
    assert not await store.exists(staged.info.sha256)
    assert await blobs(store) == {}


async def test_open_ranges(store: ArtifactStore) -> None:
    data = bytes(range(256)) * 40
    sha256 = await put(store, data)
    assert await read(store.open(sha256)) == data
    assert await read(store.open(sha256, 100)) == data[100:]
    assert await read(store.open(sha256, 10, 19)) == data[10:20]
    assert await read(store.open(sha256, 0, 0)) == data[:1]
    last = len(data) - 1
    assert await read(store.open(sha256, last, last)) == data[-1:]
    assert await read(store.open(sha256, last)) == data[-1:]
    assert await read(store.open(sha256, 5000, 10**9)) == data[5000:]
    assert await read(store.open(sha256, len(data))) == b""  # past the end: nothing


async def test_multi_megabyte_blob_round_trips(store: ArtifactStore) -> None:
    data = os.urandom(10 * 1024 * 1024 + 123)  # above S3Store's multipart threshold
    staged = await store.stage(stream(data))
    assert staged.info.sha256 == hashlib.sha256(data).hexdigest()
    assert await store.commit(staged) is False
    assert await store.size(staged.info.sha256) == len(data)
    chunks = [chunk async for chunk in store.open(staged.info.sha256)]
    assert b"".join(chunks) == data
    assert max(len(chunk) for chunk in chunks) <= 1024 * 1024
    middle = await read(store.open(staged.info.sha256, 3_000_000, 8_999_999))
    assert middle == data[3_000_000:9_000_000]


async def test_exists_size_delete(store: ArtifactStore) -> None:
    absent = hashlib.sha256(b"absent").hexdigest()
    assert not await store.exists(absent)
    with pytest.raises(NotFound):
        await store.size(absent)
    with pytest.raises(NotFound):
        await read(store.open(absent))
    await store.delete(absent)  # absent is fine

    sha256 = await put(store, b"to be deleted")
    assert await store.exists(sha256)
    await store.delete(sha256)
    assert not await store.exists(sha256)
    with pytest.raises(NotFound):
        await store.size(sha256)
    assert await blobs(store) == {}


async def test_stage_past_max_size_keeps_nothing(store: ArtifactStore) -> None:
    data = os.urandom(3 * 1024 * 1024)
    with pytest.raises(TooLarge):
        await store.stage(stream(data), max_size=2 * 1024 * 1024)
    assert staged_files(store) == []
    assert await blobs(store) == {}

    staged = await store.stage(stream(data), max_size=len(data))  # exactly the limit is fine
    assert staged.info.size == len(data)
    await store.discard(staged)


async def test_list_yields_every_blob(store: ArtifactStore) -> None:
    sizes = [0, 1, 1000, 70_000]
    expected = {}
    for size in sizes:
        data = os.urandom(size)
        expected[await put(store, data)] = size
    listed = [blob async for blob in store.list()]
    assert {blob.sha256: blob.size for blob in listed} == expected
    assert len(listed) == len(sizes)
    for blob in listed:
        assert isinstance(blob.modified, datetime)
        assert blob.modified.tzinfo is not None


async def test_parts(store: ArtifactStore) -> None:
    assert await store.put_part("u1/0", stream(b"a" * 1000), max_size=1000) == 1000
    assert await store.put_part("u1/1", stream(b"bb"), max_size=1000) == 2
    assert await store.put_part("u10/0", stream(b"other session"), max_size=1000) == 13
    assert await store.put_part("u2/0", stream(b"c"), max_size=1000) == 1
    assert await read(store.open_part("u1/0")) == b"a" * 1000
    assert await read(store.open_part("u1/1")) == b"bb"

    await store.put_part("u1/1", stream(b"replaced"), max_size=1000)
    assert await read(store.open_part("u1/1")) == b"replaced"

    with pytest.raises(TooLarge):
        await store.put_part("u1/2", stream(b"x" * 1001), max_size=1000)
    with pytest.raises(NotFound):
        await read(store.open_part("u1/2"))

    await store.delete_parts("u1/")
    for key in ("u1/0", "u1/1"):
        with pytest.raises(NotFound):
            await read(store.open_part(key))
    # The prefix is a whole path segment: "u1" is not "u10".
    assert await read(store.open_part("u10/0")) == b"other session"
    await store.delete_parts("u2")
    with pytest.raises(NotFound):
        await read(store.open_part("u2/0"))
    await store.delete_parts("never-existed/")
    assert await blobs(store) == {}  # parts are not blobs


async def test_part_keys_cannot_escape(store: ArtifactStore) -> None:
    with pytest.raises(StorageError):
        await store.put_part("../outside", stream(b"x"), max_size=10)


async def test_local_path_and_presigned_url(store: ArtifactStore) -> None:
    data = os.urandom(50_000)
    sha256 = await put(store, data)
    url = await store.presigned_url(sha256, "demo-1.0.tar.gz", ttl=60)
    path = store.local_path(sha256)
    if isinstance(store, FilesystemStore):
        assert url is None
        assert path is not None
        assert path.read_bytes() == data
        return
    assert path is None
    assert url is not None
    async with httpx.AsyncClient() as client:
        response = await client.get(url)
    assert response.status_code == 200
    assert response.content == data
    assert "demo-1.0.tar.gz" in response.headers.get("content-disposition", "")


# --- S3 only --------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_s3_without_credentials_names_the_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    settings = Settings(storage_url="s3://bucket/prefix", s3_endpoint_url="http://127.0.0.1:1")
    with pytest.raises(ConfigurationError) as caught:
        S3Store.from_settings(settings)
    assert "AWS_ACCESS_KEY_ID" in caught.value.message
    assert "AWS_SECRET_ACCESS_KEY" in caught.value.message
    assert "ORCHARD_STORAGE_URL" in caught.value.message


@pytest.mark.parametrize("url", ["s3://", "s3:///prefix-only"])
def test_s3_url_without_bucket(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with pytest.raises(ConfigurationError, match="ORCHARD_STORAGE_URL"):
        S3Store.from_settings(Settings(storage_url=url))


async def test_s3_check_fails_fast_when_nothing_listens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    settings = Settings(
        storage_url="s3://bucket/prefix", s3_endpoint_url=f"http://127.0.0.1:{_free_port()}"
    )
    store = S3Store.from_settings(settings, max_attempts=1, connect_timeout=1, read_timeout=1)
    began = time.monotonic()
    with pytest.raises(StorageError, match="ORCHARD_S3_ENDPOINT_URL"):
        await store.check()
    assert time.monotonic() - began < 10
    await store.close()


async def test_s3_check_fails_for_a_missing_bucket(s3_store: S3Store) -> None:
    missing = S3Store(s3_store.client, "no-such-bucket", "p")
    with pytest.raises(StorageError, match="no-such-bucket"):
        await missing.check()


class FlakyClient:
    """An S3 client whose named methods fail with a connection error ``n`` times."""

    def __init__(self, client: Any, failures: dict[str, int]) -> None:
        self._client = client
        self.failures = failures
        self.calls: dict[str, int] = {}

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if name not in self.failures:
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] = self.calls.get(name, 0) + 1
            if self.failures[name] > 0:
                self.failures[name] -= 1
                raise EndpointConnectionError(endpoint_url="http://127.0.0.1:1")
            return attr(*args, **kwargs)

        return call


def flaky(store: S3Store, **failures: int) -> tuple[S3Store, FlakyClient]:
    client = FlakyClient(store.client, failures)
    wrapped = S3Store(
        cast(Any, client), store.bucket, store.prefix, staging_dir=store.staging_dir, backoff=0.01
    )
    return wrapped, client


async def test_s3_existence_checks_and_writes_retry_transient_errors(s3_store: S3Store) -> None:
    store, client = flaky(s3_store, head_object=2, upload_file=2)
    staged = await store.stage(stream(b"retried"))
    assert await store.commit(staged) is False
    assert client.calls == {"head_object": 3, "upload_file": 3}
    assert await s3_store.exists(staged.info.sha256)
    assert staged_files(s3_store) == []


@pytest.mark.parametrize(
    ("failures", "error"),
    [({"head_object": 99}, ExistenceCheckError), ({"upload_file": 99}, StorageUploadError)],
)
async def test_s3_persistent_failures_are_typed(
    s3_store: S3Store, failures: dict[str, int], error: Callable[..., Exception]
) -> None:
    store, client = flaky(s3_store, **failures)
    staged = await store.stage(stream(b"doomed"))
    with pytest.raises(cast(type[Exception], error)):
        await store.commit(staged)
    assert sum(client.calls.values()) == store.attempts
    assert staged_files(s3_store) == []
    assert not await s3_store.exists(staged.info.sha256)
