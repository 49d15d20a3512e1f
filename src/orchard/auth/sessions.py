"""Web sign-in sessions.

The cookie holds a random session id and its HMAC under the server key; the
database holds only the id's SHA-256, so a leaked database cannot be replayed
as cookies, and signing out (or a password change) ends a session on every
replica at once. Each session has a CSRF token that state-changing requests
made with the cookie must echo in the ``X-CSRF-Token`` header.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from orchard.auth.keys import derive
from orchard.db.base import utcnow
from orchard.db.models import User, WebSession

COOKIE = "orchard_session"
CSRF_COOKIE = "orchard_csrf"
CSRF_HEADER = "x-csrf-token"


def _sign(key: bytes, session_id: str) -> str:
    return hmac.new(derive(key, "session-cookie"), session_id.encode(), "sha256").hexdigest()


def cookie_value(key: bytes, session_id: str) -> str:
    return f"{session_id}.{_sign(key, session_id)}"


def session_id_from_cookie(key: bytes, value: str) -> str | None:
    session_id, _, signature = value.partition(".")
    if not session_id or len(value) > 200:
        return None
    if not hmac.compare_digest(signature, _sign(key, session_id)):
        return None
    return session_id


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


async def start(
    session: AsyncSession, user: User, address: str, ttl: int
) -> tuple[str, WebSession]:
    """A new session for ``user``; returns the id (for the cookie) and the row."""
    session_id = secrets.token_urlsafe(32)
    row = WebSession(
        id_hash=_hash(session_id),
        user_id=user.id,
        csrf_token=secrets.token_urlsafe(32),
        address=address[:64],
        created_at=utcnow(),
        expires_at=utcnow() + timedelta(seconds=ttl),
    )
    session.add(row)
    await session.flush()
    return session_id, row


async def lookup(session: AsyncSession, session_id: str) -> tuple[WebSession, User] | None:
    row = await session.get(WebSession, _hash(session_id))
    if row is None or row.expires_at <= utcnow():
        return None
    user = await session.get(User, row.user_id)
    if user is None or user.disabled:
        return None
    return row, user


async def end(session: AsyncSession, session_id: str) -> None:
    await session.execute(delete(WebSession).where(WebSession.id_hash == _hash(session_id)))


async def purge_expired(session: AsyncSession) -> None:
    await session.execute(delete(WebSession).where(WebSession.expires_at <= utcnow()))


async def count_for(session: AsyncSession, user: User) -> int:
    rows = await session.scalars(select(WebSession.id_hash).where(WebSession.user_id == user.id))
    return len(list(rows))
