"""Upstream sources: /api/v1/upstreams (system administrators only).

Credentials are write-only: they are sealed at rest (auth/crypto.py), never
returned (``has_credentials`` says whether one is set) and never logged or
written to the audit log.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Request, Response
from pydantic import AliasChoices, BaseModel, Field, field_validator
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from orchard.auth.crypto import SecretBox
from orchard.auth.policy import require_admin, require_write_scope
from orchard.core.audit import record
from orchard.db.base import utcnow
from orchard.db.models import UpstreamSource
from orchard.deps import CacheDep, CurrentPrincipal, DbDep
from orchard.errors import Conflict, InvalidInput, NotFound
from orchard.upstream.client import HTTPError, UpstreamClient
from orchard.upstream.sources import UPSTREAM_FORMATS, invalidate, source_from_row
from orchard.upstream.urls import MAX_FILE_HOSTS, check_upstream_url, mask, parse_file_hosts

router = APIRouter(prefix="/upstreams", tags=["upstreams"])

NAME_PATTERN = r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,98}[A-Za-z0-9])?$"
UpstreamFormat = Literal["pypi", "npm", "go"]
AuthType = Literal["none", "basic", "bearer"]


def _check_url(value: str) -> str:
    return check_upstream_url(value, credentials_allowed=False)


FILE_HOSTS_DESCRIPTION = (
    "hosts (host or host:port) besides the source's own origin that its pages may link "
    "files to; empty: any https host with public addresses only"
)


class UpstreamIn(BaseModel):
    name: str = Field(pattern=NAME_PATTERN)
    # "ecosystem" is the deprecated name of this field, still accepted on input.
    format: UpstreamFormat = Field(validation_alias=AliasChoices("format", "ecosystem"))
    url: str = Field(max_length=2000)
    priority: int = Field(10, ge=-1000, le=1000, description="lower is asked first; settings: 0")
    enabled: bool = True
    auth_type: AuthType = "none"
    username: str = Field("", max_length=255)
    password: str | None = Field(None, max_length=4000, description="basic auth; write-only")
    token: str | None = Field(None, max_length=4000, description="bearer auth; write-only")
    file_hosts: list[str] = Field(
        default_factory=list, max_length=MAX_FILE_HOSTS, description=FILE_HOSTS_DESCRIPTION
    )

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        return _check_url(v)

    @field_validator("file_hosts")
    @classmethod
    def _hosts(cls, v: list[str]) -> list[str]:
        return list(parse_file_hosts(v))


class UpstreamPatch(BaseModel):
    url: str | None = Field(None, max_length=2000)
    priority: int | None = Field(None, ge=-1000, le=1000)
    enabled: bool | None = None
    auth_type: AuthType | None = None
    username: str | None = Field(None, max_length=255)
    password: str | None = Field(None, max_length=4000)
    token: str | None = Field(None, max_length=4000)
    file_hosts: list[str] | None = Field(
        None, max_length=MAX_FILE_HOSTS, description=FILE_HOSTS_DESCRIPTION
    )

    @field_validator("url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        return None if v is None else _check_url(v)

    @field_validator("file_hosts")
    @classmethod
    def _hosts(cls, v: list[str] | None) -> list[str] | None:
        return None if v is None else list(parse_file_hosts(v))


class UpstreamOut(BaseModel):
    name: str
    format: str
    url: str
    priority: int
    enabled: bool
    auth_type: str
    username: str
    has_credentials: bool
    file_hosts: list[str] = Field(description=FILE_HOSTS_DESCRIPTION)
    created_at: datetime
    updated_at: datetime


class UpstreamTest(BaseModel):
    ok: bool
    status: int | None
    elapsed_ms: int
    error: str | None


def _out(row: UpstreamSource) -> UpstreamOut:
    return UpstreamOut(
        name=row.name,
        format=row.format,
        url=mask(row.url),
        priority=row.priority,
        enabled=row.enabled,
        auth_type=row.auth_type,
        username=row.username,
        has_credentials=bool(row.secret_ciphertext),
        file_hosts=row.file_hosts.split(),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _box(request: Request) -> SecretBox:
    return SecretBox(request.app.state.secret_key)


def _apply_credentials(
    row: UpstreamSource, changes: dict[str, Any], box: SecretBox, creating: bool
) -> None:
    """Set auth type, username and the sealed secret from a request body."""
    if changes.get("auth_type") is not None:
        row.auth_type = changes["auth_type"]
    if changes.get("username") is not None:
        row.username = changes["username"]
    secret = changes.get("token") if row.auth_type == "bearer" else changes.get("password")
    if row.auth_type == "none":
        row.username, row.secret_ciphertext = "", ""
    elif secret:
        row.secret_ciphertext = box.seal(secret)
    elif creating or "auth_type" in changes:
        field = "token" if row.auth_type == "bearer" else "password"
        if not row.secret_ciphertext or creating:
            raise InvalidInput(f"auth_type {row.auth_type!r} needs a {field}")
    if row.auth_type == "basic" and not row.username:
        raise InvalidInput("auth_type 'basic' needs a username")


async def _get(session: AsyncSession, name: str) -> UpstreamSource:
    row = await session.scalar(select(UpstreamSource).where(UpstreamSource.name == name))
    if row is None:
        raise NotFound(f"upstream {name!r} not found")
    return row


@router.get("", response_model=list[UpstreamOut])
async def list_upstreams(db: DbDep, principal: CurrentPrincipal) -> list[UpstreamOut]:
    """The upstream sources kept in the database (the settings add one per format)."""
    require_admin(principal)
    async with db.session() as session:
        rows = await session.scalars(
            select(UpstreamSource).order_by(
                UpstreamSource.format, UpstreamSource.priority, UpstreamSource.name
            )
        )
        return [_out(r) for r in rows]


@router.post("", response_model=UpstreamOut, status_code=201)
async def create_upstream(
    body: UpstreamIn, request: Request, db: DbDep, cache: CacheDep, principal: CurrentPrincipal
) -> UpstreamOut:
    require_admin(principal)
    require_write_scope(principal)  # a read-only token changes nothing
    if body.name in UPSTREAM_FORMATS:
        raise InvalidInput(f"{body.name!r} is reserved for the settings source")
    async with db.transaction() as session:
        if await session.scalar(select(UpstreamSource.id).where(UpstreamSource.name == body.name)):
            raise Conflict(f"upstream {body.name!r} already exists")
        now = utcnow()
        row = UpstreamSource(
            name=body.name,
            format=body.format,
            url=body.url,
            priority=body.priority,
            enabled=body.enabled,
            auth_type="none",
            username="",
            secret_ciphertext="",
            file_hosts=" ".join(body.file_hosts),
            created_at=now,
            updated_at=now,
        )
        _apply_credentials(row, body.model_dump(), _box(request), creating=True)
        session.add(row)
        await session.flush()
        record(session, principal.actor, "upstream.create", row.name, url=row.url)
        out = _out(row)
    await invalidate(cache)
    return out


@router.get("/{name}", response_model=UpstreamOut)
async def get_upstream(name: str, db: DbDep, principal: CurrentPrincipal) -> UpstreamOut:
    require_admin(principal)
    async with db.session() as session:
        return _out(await _get(session, name))


@router.patch("/{name}", response_model=UpstreamOut)
async def update_upstream(
    name: str,
    body: UpstreamPatch,
    request: Request,
    db: DbDep,
    cache: CacheDep,
    principal: CurrentPrincipal,
) -> UpstreamOut:
    require_admin(principal)
    require_write_scope(principal)  # a read-only token changes nothing
    changes = body.model_dump(exclude_unset=True)
    async with db.transaction() as session:
        row = await _get(session, name)
        for key in ("url", "priority", "enabled"):
            if changes.get(key) is not None:
                setattr(row, key, changes[key])
        if changes.get("file_hosts") is not None:
            row.file_hosts = " ".join(changes["file_hosts"])
        _apply_credentials(row, changes, _box(request), creating=False)
        row.updated_at = utcnow()
        await session.flush()
        safe = sorted(k for k in changes if k not in ("password", "token"))
        record(session, principal.actor, "upstream.update", row.name, fields=safe)
        out = _out(row)
    await invalidate(cache)
    return out


@router.delete("/{name}", status_code=204)
async def delete_upstream(
    name: str, db: DbDep, cache: CacheDep, principal: CurrentPrincipal
) -> Response:
    require_admin(principal)
    require_write_scope(principal)  # a read-only token changes nothing
    async with db.transaction() as session:
        row = await _get(session, name)
        await session.delete(row)
        record(session, principal.actor, "upstream.delete", name)
    await invalidate(cache)
    return Response(status_code=204)


@router.post("/{name}/test", response_model=UpstreamTest)
async def test_upstream(
    name: str, request: Request, db: DbDep, principal: CurrentPrincipal
) -> UpstreamTest:
    """Connect to the source with its credentials; reads only the response headers."""
    require_admin(principal)
    async with db.session() as session:
        row = await _get(session, name)
    if request.app.state.settings.offline:
        return UpstreamTest(ok=False, status=None, elapsed_ms=0, error="ORCHARD_OFFLINE is set")
    source = source_from_row(row)
    headers = source.auth_headers(_box(request))
    http: UpstreamClient = request.app.state.http
    started = time.monotonic()
    try:
        async with http.stream("GET", f"{source.url}/", headers=headers) as response:
            status = response.status_code
    except HTTPError as exc:
        elapsed = int((time.monotonic() - started) * 1000)
        return UpstreamTest(ok=False, status=None, elapsed_ms=elapsed, error=type(exc).__name__)
    elapsed = int((time.monotonic() - started) * 1000)
    ok = status < 400
    return UpstreamTest(
        ok=ok, status=status, elapsed_ms=elapsed, error=None if ok else f"HTTP {status}"
    )
