"""The JSON shapes of the REST API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ProjectIn(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    description: str = Field("", max_length=10_000)
    is_public: bool = True
    upstream: bool = True


class ProjectPatch(BaseModel):
    description: str | None = Field(None, max_length=10_000)
    is_public: bool | None = None
    upstream: bool | None = None


class ProjectOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    name: str
    description: str
    is_public: bool
    upstream: bool
    builtin: bool
    created_at: datetime
    updated_at: datetime


PACKAGE_URL_NOTE = (
    "A package's own API URL: ``/api/v1/project/{project}/packages/{format}:{name}`` with "
    "the name percent-encoded as one segment (``npm:%40babel%2Fcore``)."
)


class PackageIn(BaseModel):
    name: str = Field(min_length=1, max_length=214)
    format: str = "generic"
    description: str = Field("", max_length=10_000)


class PackageOut(BaseModel):
    name: str = Field(description="the name as the format stores it (PyPI: PEP 503 normal form)")
    display_name: str = Field(description="the name as first written")
    format: str
    description: str
    created_at: datetime
    url: str = Field(description=PACKAGE_URL_NOTE)


class VersionPatch(BaseModel):
    yanked: bool | None = None
    yank_reason: str | None = Field(None, max_length=1000)
    deprecated: str | None = Field(None, max_length=1000)


class FileOut(BaseModel):
    filename: str
    size: int
    sha256: str
    content_type: str
    created_at: datetime
    url: str


class VersionOut(BaseModel):
    version: str
    created_at: datetime
    yanked: bool
    yank_reason: str
    deprecated: str
    meta: dict[str, Any]
    files: list[FileOut] | None = None
    url: str = Field(description="the version's own API URL")


class ReferenceOut(BaseModel):
    project: str
    package: str
    version: str
    filename: str
    created_at: datetime


class DependencyOut(BaseModel):
    format: str
    name: str
    specifier: str
    kind: str


class UploadSessionIn(BaseModel):
    project: str
    package: str
    version: str
    filename: str
    size: int | None = Field(None, ge=0)


class UploadSessionOut(BaseModel):
    id: str
    project: str
    package: str
    version: str
    filename: str
    offset: int
    size: int | None
    expires_at: datetime


class UploadComplete(BaseModel):
    sha256: str = Field(min_length=64, max_length=64)


class AuditOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    at: datetime
    actor: str
    action: str
    target: str
    address: str
    credential: str
    detail: dict[str, Any]


class SearchHit(BaseModel):
    project: str
    package: str = Field(description="the package's display name")
    format: str
    description: str
    latest_version: str | None
    url: str = Field(description=PACKAGE_URL_NOTE)


class StorageStats(BaseModel):
    artifacts: int
    stored_bytes: int
    files: int
    logical_bytes: int
    saved_bytes: int
    unreferenced_artifacts: int
