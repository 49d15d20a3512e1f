"""Fixtures for integration tests: real backends, each in its own section."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from orchard.settings import Settings
from orchard.storage.base import ArtifactStore
from orchard.storage.filesystem import FilesystemStore
from orchard.storage.s3 import S3Store
from tests.fakes.s3server import create_bucket, delete_bucket

# --- Storage backends (filesystem, S3 on moto) ----------------------------------------------

@pytest.fixture
def s3_bucket(s3_server: str) -> Iterator[str]:
    """A fresh, empty bucket, removed afterwards."""
    name = f"orchard-{uuid.uuid4().hex[:12]}"
    create_bucket(s3_server, name)
    try:
        yield name
    finally:
        delete_bucket(s3_server, name)


@pytest.fixture
def staging_dir(tmp_path: Path) -> Path:
    path = tmp_path / "staging"
    path.mkdir()
    return path


@pytest.fixture
async def s3_store(s3_server: str, s3_bucket: str, staging_dir: Path) -> AsyncIterator[S3Store]:
    settings = Settings(storage_url=f"s3://{s3_bucket}/orchard", s3_endpoint_url=s3_server)
    store = S3Store.from_settings(settings, staging_dir=staging_dir)
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
async def fs_store(tmp_path: Path) -> AsyncIterator[FilesystemStore]:
    store = FilesystemStore(tmp_path / "blobs")
    try:
        yield store
    finally:
        await store.close()


_STORE_FIXTURES = {"filesystem": "fs_store", "s3": "s3_store"}


@pytest.fixture(params=list(_STORE_FIXTURES))
def store(request: pytest.FixtureRequest) -> ArtifactStore:
    """Each storage backend in turn: the contract suite runs against all of them."""
    backend: ArtifactStore = request.getfixturevalue(_STORE_FIXTURES[request.param])
    return backend


# --- end of storage backends ----------------------------------------------------------------
