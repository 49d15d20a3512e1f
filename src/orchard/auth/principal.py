"""Who is making a request: resolved once per request from its credentials.

Accepted, in this order:

- ``Authorization: Bearer <token>`` (npm, curl, the CLI);
- ``Authorization: Basic`` with a token as the password and any user name
  (pip, uv and twine send ``__token__``), or a user name and password;
- the web UI's session cookie (state-changing requests must also send the
  session's CSRF token in ``X-CSRF-Token``);
- nothing: anonymous, who may read public projects only.

A credential that is present but wrong is a 401 at once, never a silent
downgrade to anonymous (except an expired cookie: the browser signs in
again).
"""

from __future__ import annotations

import base64
import binascii
import hmac
from dataclasses import dataclass

from fastapi import Request
from sqlalchemy import select

from orchard.auth import credentials, passwords, sessions, throttle, tokens
from orchard.core.audit import Actor
from orchard.db.models import User
from orchard.db.session import Database
from orchard.errors import Forbidden, Unauthorized

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# What a session whose password must change may still do.
PASSWORD_CHANGE_PATHS = frozenset(
    {"/api/v1/auth/me", "/api/v1/auth/password", "/api/v1/auth/logout"}
)


@dataclass(frozen=True)
class Principal:
    user_id: int | None
    username: str
    is_admin: bool
    credential: str  # anonymous | session | basic | token:<id>
    address: str
    scope: str = "write"  # a read token can only read
    token_projects: frozenset[str] | None = None  # a token restricted to these
    must_change_password: bool = False

    @property
    def authenticated(self) -> bool:
        return self.user_id is not None

    @property
    def actor(self) -> Actor:
        return Actor(name=self.username, address=self.address, credential=self.credential)

    @classmethod
    def anonymous(cls, address: str) -> Principal:
        return cls(
            user_id=None,
            username="anonymous",
            is_admin=False,
            credential="anonymous",
            address=address,
            scope="read",
        )


def _from_user(user: User, credential: str, address: str) -> Principal:
    return Principal(
        user_id=user.id,
        username=user.username,
        is_admin=user.is_admin,
        credential=credential,
        address=address,
        must_change_password=user.must_change_password,
    )


def _basic(header: str) -> tuple[str, str]:
    try:
        decoded = base64.b64decode(header, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise Unauthorized("malformed basic credentials") from exc
    user, sep, password = decoded.partition(":")
    if not sep:
        raise Unauthorized("malformed basic credentials")
    return user, password


async def _token(db: Database, secret: str, address: str) -> Principal:
    async with db.session() as session:
        found = await tokens.authenticate(session, secret)
    if found is None:
        raise Unauthorized("invalid, expired or revoked token")
    token, user = found
    if tokens.needs_touch(token):  # a write at most once a minute per token
        async with db.transaction() as session:
            await tokens.touch(session, token)
    projects = frozenset(token.projects) if token.projects is not None else None
    return Principal(
        user_id=user.id,
        username=user.username,
        is_admin=user.is_admin,
        credential=f"token:{token.id}",
        address=address,
        scope=token.scope,
        token_projects=projects,
    )


async def check_password(
    db: Database, name: str, password: str, address: str, max_failures: int
) -> User:
    """The active user with this name and password, or Unauthorized; throttled
    per user name and per address (the attempt is counted before argon2 runs)."""
    keys = throttle.keys_for(name, address)
    await throttle.attempt(db, keys, max_failures)
    async with db.session() as session:
        user = await session.scalar(select(User).where(User.username == name.strip().lower()))
    ok = await passwords.verify_password(user.password_hash if user else None, password)
    if not ok or user is None or user.disabled:
        await throttle.failed(db, keys, max_failures)
        raise Unauthorized("invalid user name or password")
    await throttle.succeeded(db, keys)
    return user


async def resolve(request: Request) -> Principal:
    state = request.app.state
    db: Database = state.db
    address = request.client.host if request.client else ""
    found = credentials.presented(request.scope["headers"])
    if found.any:
        # Whatever is answered depended on a credential: never kept for others.
        request.scope[credentials.CREDENTIALED] = True
    header = found.authorization
    if header:
        kind, _, value = header.partition(" ")
        kind, value = kind.lower(), value.strip()
        if kind == "bearer" and value:
            return await _token(db, value, address)
        if kind == "basic" and value:
            name, password = _basic(value)
            if tokens.looks_like_token(password):
                return await _token(db, password, address)
            limit = state.settings.login_max_failures
            user = await check_password(db, name, password, address, limit)
            principal = _from_user(user, "basic", address)
            _check_password_change(request, principal)
            return principal
        raise Unauthorized("unsupported Authorization header")
    cookie = found.session_cookie
    if cookie:
        session_id = sessions.session_id_from_cookie(state.secret_key, cookie)
        if session_id is not None:
            async with db.session() as session:
                found_session = await sessions.lookup(session, session_id)
            if found_session is not None:
                row, user = found_session
                principal = _from_user(user, "session", address)
                _check_session_request(request, row.csrf_token, principal)
                return principal
    return Principal.anonymous(address)


def _check_session_request(request: Request, csrf_token: str, principal: Principal) -> None:
    if request.method not in SAFE_METHODS:
        sent = request.headers.get(sessions.CSRF_HEADER, "")
        if not hmac.compare_digest(sent, csrf_token):
            raise Forbidden("missing or wrong X-CSRF-Token for a signed-in browser request")
    _check_password_change(request, principal)


def _check_password_change(request: Request, principal: Principal) -> None:
    """A user whose password must change may only change it (any credential
    that carries the password: a session or Basic)."""
    if principal.must_change_password and request.url.path not in PASSWORD_CHANGE_PATHS:
        raise Forbidden("password change required: POST /api/v1/auth/password")
