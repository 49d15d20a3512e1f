"""Artifact storage backends and the URL → backend table."""

from __future__ import annotations

from collections.abc import Callable

from orchard.errors import ConfigurationError
from orchard.settings import Settings
from orchard.storage.base import ArtifactStore


def _filesystem(settings: Settings) -> ArtifactStore:
    from orchard.storage.filesystem import FilesystemStore

    return FilesystemStore.from_url(settings.effective_storage_url)


def _s3(settings: Settings) -> ArtifactStore:
    from orchard.storage.s3 import S3Store

    staging = settings.data_dir / "staging"
    staging.mkdir(parents=True, exist_ok=True)
    return S3Store.from_settings(settings, staging_dir=staging)


FACTORIES: dict[str, Callable[[Settings], ArtifactStore]] = {
    "file": _filesystem,
    "s3": _s3,
}


def create_store(settings: Settings) -> ArtifactStore:
    """Build the backend named by ORCHARD_STORAGE_URL's scheme."""
    url = settings.effective_storage_url
    scheme = url.split("://", 1)[0] if "://" in url else ""
    factory = FACTORIES.get(scheme)
    if factory is None:
        raise ConfigurationError(
            f"ORCHARD_STORAGE_URL={url!r}: unsupported scheme {scheme!r} (use file:// or s3://)"
        )
    return factory(settings)
