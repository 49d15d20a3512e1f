"""Uploading and downloading the files of a version."""

from __future__ import annotations

import mimetypes
from collections.abc import AsyncIterator
from dataclasses import dataclass

from fastapi import APIRouter, Header, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.datastructures import UploadFile

from orchard.api.downloads import artifact_response
from orchard.api.urls import PackageRef, SegmentRoute, file_url
from orchard.auth.policy import project_for
from orchard.auth.principal import Principal
from orchard.core import artifacts, catalog, names
from orchard.core.artifacts import StoredFile
from orchard.core.audit import Actor
from orchard.db.session import Database
from orchard.deps import CurrentActor, CurrentPrincipal, DbDep, SettingsDep, StorageDep
from orchard.errors import InvalidInput
from orchard.metrics import DEDUP_BYTES, DEDUP_HITS, UPLOADS
from orchard.storage.base import ArtifactStore, StagedBlob

router = APIRouter(tags=["files"], route_class=SegmentRoute)

FILE = "/project/{project}/packages/{package}/versions/{version}/files/{filename}"


class UploadOut(BaseModel):
    """The answer to an upload: the file and its hashes, nothing more.

    Whether the bytes were already stored (deduplication) and how many files
    share them stay internal: the bytes may be stored for a project the
    uploader cannot read, and the answer must not tell. ``created`` is false
    when this very file (same path, same bytes) was already there, which the
    uploader can see anyway."""

    project: str
    package: str
    format: str
    version: str
    filename: str
    sha256: str
    size: int
    md5: str
    sha1: str
    sha512: str
    created: bool
    url: str


def guess_content_type(filename: str, declared: str | None) -> str:
    if declared and declared.split(";")[0].strip() not in ("", "application/octet-stream"):
        value = declared.split(";")[0].strip()
        if len(value) < 128 and "/" in value:
            return value
    return mimetypes.guess_type(filename)[0] or "application/octet-stream"


async def check_target(
    db: Database,
    principal: Principal,
    project: str,
    package: str,
    version: str,
    filename: str,
) -> None:
    """Refuse a bad or forbidden target before a single body byte is read."""
    catalog.split_reference(package)
    names.version_string(version)
    names.filename(filename)
    async with db.session() as session:
        catalog.ensure_writable(await project_for(session, principal, project, "write"))


@dataclass(frozen=True)
class Stored:
    """A stored file and the format of its package."""

    file: StoredFile
    format: str


async def store_staged(
    db: Database,
    storage: ArtifactStore,
    actor: Actor,
    staged: StagedBlob,
    *,
    project: str,
    package: str,
    version: str,
    filename: str,
    content_type: str,
    expected_sha256: str | None = None,
) -> Stored:
    """Verify and attach staged bytes; discards them on any failure."""
    try:
        artifacts.verify_checksum(staged, expected_sha256)
        async with db.transaction() as session:
            row = await catalog.get_project(session, project)
            catalog.ensure_writable(row)
            pkg = await catalog.package_for_write(session, row, package)
            fmt = pkg.format
            result = await artifacts.add_file(
                session,
                storage,
                actor,
                project=row,
                package_name=pkg.display_name,
                package_format=fmt,
                version=version,
                filename=filename,
                staged=staged,
                content_type=content_type,
            )
    except BaseException:
        UPLOADS.labels("rejected").inc()
        await storage.discard(staged)
        raise
    UPLOADS.labels("stored" if result.created else "unchanged").inc()
    if result.deduplicated:
        DEDUP_HITS.inc()
        DEDUP_BYTES.inc(staged.info.size)
    return Stored(result, fmt)


def upload_response(request: Request, stored: Stored) -> JSONResponse:
    result = stored.file
    a = result.artifact
    body = UploadOut(
        project=result.project,
        package=result.package,
        format=stored.format,
        version=result.version,
        filename=result.filename,
        sha256=a.id,
        size=a.size,
        md5=a.md5,
        sha1=a.sha1,
        sha512=a.sha512,
        created=result.created,
        url=file_url(
            request,
            result.project,
            stored.format,
            result.package,
            result.version,
            result.filename,
        ),
    )
    return JSONResponse(
        body.model_dump(mode="json"),
        status_code=201 if result.created else 200,
        headers={"Location": body.url},
    )


@router.put(FILE, response_model=UploadOut, status_code=201)
async def put_file(
    project: str,
    package: PackageRef,
    version: str,
    filename: str,
    request: Request,
    db: DbDep,
    storage: StorageDep,
    settings: SettingsDep,
    actor: CurrentActor,
    principal: CurrentPrincipal,
    x_checksum_sha256: str | None = Header(None, description="expected SHA-256 (hex)"),
) -> JSONResponse:
    """Upload a file as the raw request body (streamed, never buffered)."""
    await check_target(db, principal, project, package, version, filename)
    staged = await storage.stage(request.stream(), max_size=settings.max_upload_size)
    result = await store_staged(
        db,
        storage,
        actor,
        staged,
        project=project,
        package=package,
        version=version,
        filename=filename,
        expected_sha256=x_checksum_sha256,
        content_type=guess_content_type(filename, request.headers.get("content-type")),
    )
    return upload_response(request, result)


async def _upload_chunks(upload: UploadFile) -> AsyncIterator[bytes]:
    while chunk := await upload.read(1024 * 1024):
        yield chunk


@router.post(
    "/project/{project}/packages/{package}/upload", response_model=UploadOut, status_code=201
)
async def post_file(
    project: str,
    package: PackageRef,
    request: Request,
    db: DbDep,
    storage: StorageDep,
    settings: SettingsDep,
    actor: CurrentActor,
    principal: CurrentPrincipal,
) -> JSONResponse:
    """Browser upload: multipart form with ``version``, ``file`` and an
    optional ``sha256``."""
    async with request.form(max_files=1, max_fields=10) as form:
        version = form.get("version")
        upload = form.get("file")
        expected = form.get("sha256")
        if not isinstance(version, str) or not isinstance(upload, UploadFile):
            raise InvalidInput("multipart upload needs a 'version' field and a 'file' part")
        filename = upload.filename or ""
        await check_target(db, principal, project, package, version, filename)
        staged = await storage.stage(_upload_chunks(upload), max_size=settings.max_upload_size)
        result = await store_staged(
            db,
            storage,
            actor,
            staged,
            project=project,
            package=package,
            version=version,
            filename=filename,
            expected_sha256=expected if isinstance(expected, str) else None,
            content_type=guess_content_type(filename, upload.content_type),
        )
    return upload_response(request, result)


@router.get(
    FILE,
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
@router.head(FILE, response_class=Response)
async def get_file(
    project: str,
    package: PackageRef,
    version: str,
    filename: str,
    request: Request,
    db: DbDep,
    storage: StorageDep,
    settings: SettingsDep,
    principal: CurrentPrincipal,
) -> Response:
    """Download a file: Range, ETag/If-None-Match, checksum headers."""
    async with db.session() as session:
        row = await project_for(session, principal, project, "read")
        pkg = await catalog.resolve_package(session, row, package)
        ver = await catalog.get_version(session, pkg, version)
        f = await catalog.get_file(session, ver, filename)
        artifact = await artifacts.get_artifact(session, f.artifact_id)
    return await artifact_response(request, artifact, storage, settings, filename)
