"""API tokens: ``orch_`` + 43 random characters, stored as SHA-256.

A token is checked against the database on every request, so a revoked or
expired token fails at once on every replica. ``last_used_at`` is written at
most once a minute per token to keep reads cheap.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from orchard.core import names
from orchard.core.audit import Actor, record
from orchard.db.base import utcnow
from orchard.db.models import ApiToken, User
from orchard.errors import Forbidden, InvalidInput, NotFound

PREFIX = "orch_"
SCOPES = ("read", "write")
LAST_USED_RESOLUTION = timedelta(seconds=60)


def _aware(value: datetime | None) -> datetime | None:
    """A client's expiry without a time zone is UTC."""
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def looks_like_token(value: str) -> bool:
    return value.startswith(PREFIX) and 20 < len(value) < 100


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def create_token(
    session: AsyncSession,
    actor: Actor,
    user: User,
    name: str,
    scope: str,
    *,
    expires_at: datetime | None = None,
    projects: list[str] | None = None,
) -> tuple[ApiToken, str]:
    """Create a token; returns the row and the secret (shown once)."""
    if scope not in SCOPES:
        raise InvalidInput(f"scope must be one of {', '.join(SCOPES)}")
    name = name.strip()
    if not name or len(name) > 100 or not names.visible(name):
        raise InvalidInput("token name must be 1-100 printable characters")
    if projects is not None:
        projects = sorted({names.project_name(p) for p in projects})
    expires_at = _aware(expires_at)
    if expires_at is not None and expires_at <= utcnow():
        raise InvalidInput("expiry must be in the future")
    secret = PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(
        user_id=user.id,
        name=name,
        token_hash=token_hash(secret),
        prefix=secret[:12],
        scope=scope,
        projects=projects,
        expires_at=expires_at,
        created_at=utcnow(),
    )
    session.add(row)
    await session.flush()
    record(
        session,
        actor,
        "token.create",
        f"{user.username}/{name}",
        token=row.id,
        scope=scope,
        projects=projects,
    )
    return row, secret


async def authenticate(session: AsyncSession, secret: str) -> tuple[ApiToken, User] | None:
    """The live token and its enabled user, or None."""
    row = await session.scalar(select(ApiToken).where(ApiToken.token_hash == token_hash(secret)))
    now = utcnow()
    if row is None or row.revoked_at is not None:
        return None
    if row.expires_at is not None and row.expires_at <= now:
        return None
    user = await session.get(User, row.user_id)
    if user is None or user.disabled:
        return None
    return row, user


def token_id_of(credential: str) -> int | None:
    """The id of the token behind a principal's credential (``token:<id>``)."""
    kind, _, value = credential.partition(":")
    return int(value) if kind == "token" and value.isdigit() else None


def check_within(
    parent: ApiToken, scope: str, expires_at: datetime | None, projects: list[str] | None
) -> None:
    """Refuse (Forbidden) a token that ``parent`` may not create: one that can
    do more (write from a read token, projects outside its own) or lives
    longer than ``parent``."""
    if parent.scope != "write":
        raise Forbidden("a read-only token cannot create tokens")
    if scope not in SCOPES:
        raise InvalidInput(f"scope must be one of {', '.join(SCOPES)}")
    if parent.projects is not None:
        wanted = {names.project_name(p) for p in projects or []}
        if not wanted or not wanted <= set(parent.projects):
            raise Forbidden(
                "a project-restricted token can only create tokens within its own projects"
            )
    expires_at = _aware(expires_at)
    if parent.expires_at is not None and (expires_at is None or expires_at > parent.expires_at):
        raise Forbidden(
            "a token that expires can only create tokens that expire no later "
            f"than itself ({parent.expires_at.isoformat()})"
        )


def may_revoke(actor_token: ApiToken, target: ApiToken) -> bool:
    """Whether a token may revoke ``target`` (a token of the same user): a
    read-only token changes nothing; a project-restricted one may revoke
    itself and tokens within its own projects, never a broader one."""
    if actor_token.scope != "write":
        return False
    if target.id == actor_token.id or actor_token.projects is None:
        return True
    return target.projects is not None and set(target.projects) <= set(actor_token.projects)


def needs_touch(token: ApiToken) -> bool:
    return token.last_used_at is None or utcnow() - token.last_used_at > LAST_USED_RESOLUTION


async def touch(session: AsyncSession, token: ApiToken) -> None:
    await session.execute(
        update(ApiToken).where(ApiToken.id == token.id).values(last_used_at=utcnow())
    )


async def list_tokens(session: AsyncSession, user: User | None) -> list[ApiToken]:
    stmt = select(ApiToken).order_by(ApiToken.id)
    if user is not None:
        stmt = stmt.where(ApiToken.user_id == user.id)
    return list(await session.scalars(stmt))


async def revoke(session: AsyncSession, actor: Actor, token: ApiToken) -> None:
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        record(session, actor, "token.revoke", token.name, token=token.id)
        await session.flush()


MAX_TOKEN_ID = 2**31 - 1  # ids are 32-bit integers: a bigger one is no token


async def get_token(session: AsyncSession, token_id: int) -> ApiToken:
    if not 1 <= token_id <= MAX_TOKEN_ID:  # a huge one would overflow SQLite's integer
        raise NotFound(f"token {token_id} not found")
    row = await session.get(ApiToken, token_id)
    if row is None:
        raise NotFound(f"token {token_id} not found")
    return row
