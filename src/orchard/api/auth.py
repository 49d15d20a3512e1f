"""Web sign-in: /api/v1/auth/login, logout, me, password."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from orchard.auth import credentials, passwords, sessions
from orchard.auth.policy import require_user
from orchard.auth.principal import check_password
from orchard.auth.users import set_password
from orchard.core.audit import Actor, record
from orchard.db.models import User
from orchard.deps import CurrentPrincipal, DbDep, SettingsDep, client_address
from orchard.errors import Forbidden, InvalidInput, Unauthorized

router = APIRouter(prefix="/auth", tags=["auth"])


class LoginIn(BaseModel):
    username: str = Field(min_length=1, max_length=150)
    password: str = Field(min_length=1, max_length=1024)


class PasswordIn(BaseModel):
    current_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(min_length=1, max_length=1024)


class MeOut(BaseModel):
    username: str
    is_admin: bool
    authenticated: bool
    credential: str
    must_change_password: bool


@router.post("/login", response_model=MeOut)
async def login(body: LoginIn, request: Request, db: DbDep, settings: SettingsDep) -> JSONResponse:
    """Sign in; sets the session cookie and returns the CSRF token to echo
    in ``X-CSRF-Token`` on state-changing requests."""
    address = client_address(request)
    try:
        user = await check_password(
            db, body.username, body.password, address, settings.login_max_failures
        )
    except Unauthorized:
        async with db.transaction() as session:
            record(
                session,
                Actor("anonymous", address, "anonymous"),
                "auth.login_failed",
                body.username.strip()[:150],
            )
        raise
    async with db.transaction() as session:
        await sessions.purge_expired(session)
        session_id, row = await sessions.start(session, user, address, settings.session_ttl)
        record(session, Actor(user.username, address, "session"), "auth.login", user.username)
    out = MeOut(
        username=user.username,
        is_admin=user.is_admin,
        authenticated=True,
        credential="session",
        must_change_password=user.must_change_password,
    )
    response = JSONResponse({**out.model_dump(), "csrf_token": row.csrf_token})
    secure = settings.cookie_secure
    response.set_cookie(
        sessions.COOKIE,
        sessions.cookie_value(request.app.state.secret_key, session_id),
        max_age=settings.session_ttl,
        httponly=True,
        samesite="strict",
        secure=secure,
        path="/",
    )
    response.set_cookie(
        sessions.CSRF_COOKIE,
        row.csrf_token,
        max_age=settings.session_ttl,
        httponly=False,
        samesite="strict",
        secure=secure,
        path="/",
    )
    return response


@router.post("/logout", status_code=204)
async def logout(request: Request, db: DbDep, principal: CurrentPrincipal) -> Response:
    cookie = credentials.presented(request.scope["headers"]).session_cookie
    session_id = (
        sessions.session_id_from_cookie(request.app.state.secret_key, cookie) if cookie else None
    )
    if session_id:
        async with db.transaction() as session:
            await sessions.end(session, session_id)
            if principal.authenticated:
                record(session, principal.actor, "auth.logout", principal.username)
    response = Response(status_code=204)
    response.delete_cookie(sessions.COOKIE, path="/")
    response.delete_cookie(sessions.CSRF_COOKIE, path="/")
    return response


@router.get("/me", response_model=MeOut)
async def me(principal: CurrentPrincipal) -> MeOut:
    return MeOut(
        username=principal.username,
        is_admin=principal.is_admin,
        authenticated=principal.authenticated,
        credential=principal.credential,
        must_change_password=principal.must_change_password,
    )


@router.post("/password", status_code=204)
async def change_password(body: PasswordIn, db: DbDep, principal: CurrentPrincipal) -> Response:
    """Change your own password (required after the first sign-in of a
    generated or preset admin password). Ends all your web sessions: sign
    in again with the new password."""
    require_user(principal)
    if principal.credential.startswith("token:"):
        raise Forbidden("sign in with a password to change it")
    if body.new_password == body.current_password:
        raise InvalidInput("the new password must differ from the current one")
    async with db.transaction() as session:
        user = await session.get(User, principal.user_id)
        assert user is not None
        if not await passwords.verify_password(user.password_hash, body.current_password):
            raise Unauthorized("current password is wrong")
        await set_password(session, principal.actor, user, body.new_password)
    return Response(status_code=204)
