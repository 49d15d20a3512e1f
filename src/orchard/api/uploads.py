"""Resumable uploads: /api/v1/uploads."""

from __future__ import annotations

import re

from fastapi import APIRouter, Header, Request, Response
from fastapi.responses import JSONResponse

from orchard.api.files import (
    UploadOut,
    check_target,
    guess_content_type,
    store_staged,
    upload_response,
)
from orchard.api.schemas import UploadComplete, UploadSessionIn, UploadSessionOut
from orchard.auth.policy import project_for, require_write_scope
from orchard.auth.principal import Principal
from orchard.core import uploads
from orchard.db.models import UploadSession
from orchard.db.session import Database
from orchard.deps import CurrentPrincipal, DbDep, SettingsDep, StorageDep
from orchard.errors import ChecksumMismatch, Conflict, InvalidInput, NotFound

router = APIRouter(tags=["uploads"])

# ASCII digits only (``\d`` and ``str.isdigit`` take other scripts' digits
# too), and at most 19 of them: an offset is a 64-bit number.
_OFFSET = re.compile(r"[0-9]{1,19}")
_CONTENT_RANGE = re.compile(r"bytes ([0-9]{1,19})-([0-9]{1,19})/([0-9]{1,19}|\*)")


def session_out(row: UploadSession) -> JSONResponse:
    body = UploadSessionOut(
        id=row.id,
        project=row.project,
        package=row.package,
        version=row.version,
        filename=row.filename,
        offset=row.offset,
        size=row.size,
        expires_at=row.expires_at,
    )
    return JSONResponse(body.model_dump(mode="json"), headers={"Upload-Offset": str(row.offset)})


def requested_offset(upload_offset: str | None, content_range: str | None) -> int:
    """Where a chunk starts: its ``Upload-Offset``, else the start of its
    ``Content-Range``; anything else is a 400."""
    if upload_offset is not None:
        if _OFFSET.fullmatch(upload_offset.strip()) is None:
            raise InvalidInput("Upload-Offset must be a non-negative integer of at most 19 digits")
        return int(upload_offset)
    if content_range is not None:
        match = _CONTENT_RANGE.fullmatch(content_range.strip())
        if match is None:
            raise InvalidInput(
                "Content-Range must read 'bytes START-END/TOTAL' (numbers of at most 19 digits)"
            )
        return int(match.group(1))
    raise InvalidInput("a chunk needs an Upload-Offset (or Content-Range) header")


async def own_upload(
    db: Database, principal: Principal, upload_id: str, *, write: bool = True
) -> UploadSession:
    """An upload session exists only for the user who started it; changing
    it needs a credential that may write."""
    async with db.session() as session:
        row = await uploads.get(session, upload_id)
    if not principal.authenticated or row.created_by != principal.username:
        raise NotFound(f"upload {upload_id!r} not found or expired")
    if write:
        require_write_scope(principal)
    return row


@router.post("/uploads", response_model=UploadSessionOut, status_code=201)
async def create_upload(
    body: UploadSessionIn, db: DbDep, settings: SettingsDep, principal: CurrentPrincipal
) -> JSONResponse:
    """Start a resumable upload; send chunks with PATCH, then complete."""
    async with db.transaction() as session:
        await project_for(session, principal, body.project, "write")
        row = await uploads.create(
            session,
            principal.actor,
            project=body.project,
            package=body.package,
            version=body.version,
            filename=body.filename,
            size=body.size,
            ttl=settings.upload_session_ttl,
            max_size=settings.max_upload_size,
        )
    response = session_out(row)
    response.status_code = 201
    response.headers["Location"] = f"/api/v1/uploads/{row.id}"
    return response


@router.get("/uploads/{upload_id}", response_model=UploadSessionOut)
@router.head("/uploads/{upload_id}", response_model=UploadSessionOut)
async def get_upload(upload_id: str, db: DbDep, principal: CurrentPrincipal) -> JSONResponse:
    """The upload's current offset (also in the Upload-Offset header)."""
    return session_out(await own_upload(db, principal, upload_id, write=False))


@router.patch("/uploads/{upload_id}", response_model=UploadSessionOut)
async def append_chunk(
    upload_id: str,
    request: Request,
    db: DbDep,
    storage: StorageDep,
    settings: SettingsDep,
    principal: CurrentPrincipal,
    upload_offset: str | None = Header(None, description="where this chunk starts"),
    content_range: str | None = Header(None),
) -> JSONResponse:
    """Append the request body at ``Upload-Offset``; 409 if that is not the
    upload's current offset."""
    offset = requested_offset(upload_offset, content_range)
    await own_upload(db, principal, upload_id)
    row = await uploads.append(
        db,
        storage,
        upload_id,
        offset,
        request.stream(),
        max_size=settings.max_upload_size,
        ttl=settings.upload_session_ttl,
    )
    return session_out(row)


@router.post("/uploads/{upload_id}/complete", response_model=UploadOut, status_code=201)
async def complete_upload(
    upload_id: str,
    body: UploadComplete,
    request: Request,
    db: DbDep,
    storage: StorageDep,
    settings: SettingsDep,
    principal: CurrentPrincipal,
) -> JSONResponse:
    """Assemble the chunks, verify the SHA-256, and store the file. A wrong
    hash is a 400 and stores nothing (the upload is discarded)."""
    actor = principal.actor
    row = await own_upload(db, principal, upload_id)
    async with db.session() as session:
        parts = await uploads.parts_of(session, row)
    await check_target(db, principal, row.project, row.package, row.version, row.filename)
    staged = await storage.stage(
        uploads.parts_stream(storage, parts), max_size=settings.max_upload_size
    )
    try:
        result = await store_staged(
            db,
            storage,
            actor,
            staged,
            project=row.project,
            package=row.package,
            version=row.version,
            filename=row.filename,
            expected_sha256=body.sha256,
            content_type=guess_content_type(row.filename, None),
        )
    except (ChecksumMismatch, Conflict):
        await uploads.remove(db, storage, upload_id)  # these bytes can never succeed
        raise
    await uploads.remove(db, storage, upload_id)
    return upload_response(request, result)


@router.delete("/uploads/{upload_id}", status_code=204)
async def abort_upload(
    upload_id: str, db: DbDep, storage: StorageDep, principal: CurrentPrincipal
) -> Response:
    """Abort an upload and delete its bytes."""
    await own_upload(db, principal, upload_id)
    await uploads.remove(db, storage, upload_id)
    return Response(status_code=204)
