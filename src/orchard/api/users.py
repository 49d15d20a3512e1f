"""User administration (administrators only): /api/v1/users."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from orchard.auth import users
from orchard.auth.policy import require_admin, require_write_scope
from orchard.db.models import User
from orchard.deps import CurrentPrincipal, DbDep

router = APIRouter(prefix="/users", tags=["users"])


class UserIn(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)
    is_admin: bool = False
    must_change_password: bool = True


class UserPatch(BaseModel):
    is_admin: bool | None = None
    disabled: bool | None = None
    password: str | None = Field(
        None,
        min_length=1,
        max_length=1024,
        description="reset: the user must change it at next sign-in",
    )


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    username: str
    is_admin: bool
    disabled: bool
    must_change_password: bool
    created_at: datetime


@router.get("", response_model=list[UserOut])
async def list_users(db: DbDep, principal: CurrentPrincipal) -> list[UserOut]:
    require_admin(principal)
    async with db.session() as session:
        rows = await session.scalars(select(User).order_by(User.username))
        return [UserOut.model_validate(u) for u in rows]


@router.post("", response_model=UserOut, status_code=201)
async def create_user(body: UserIn, db: DbDep, principal: CurrentPrincipal) -> UserOut:
    require_admin(principal)
    require_write_scope(principal)
    async with db.transaction() as session:
        user = await users.create_user(
            session,
            principal.actor,
            body.username,
            body.password,
            is_admin=body.is_admin,
            must_change_password=body.must_change_password,
        )
        return UserOut.model_validate(user)


@router.get("/{username}", response_model=UserOut)
async def get_user(username: str, db: DbDep, principal: CurrentPrincipal) -> UserOut:
    require_admin(principal)
    async with db.session() as session:
        return UserOut.model_validate(await users.get_user(session, username))


@router.patch("/{username}", response_model=UserOut)
async def update_user(
    username: str, body: UserPatch, db: DbDep, principal: CurrentPrincipal
) -> UserOut:
    """Promote, demote, disable, enable, or reset the password of a user.
    The last active administrator can be neither demoted nor disabled (409)."""
    require_admin(principal)
    require_write_scope(principal)
    async with db.transaction() as session:
        user = await users.get_user(session, username)
        if body.is_admin is not None:
            await users.set_admin(session, principal.actor, user, body.is_admin)
        if body.disabled is not None and body.disabled != user.disabled:
            await users.set_disabled(session, principal.actor, user, body.disabled)
        if body.password is not None:
            await users.set_password(
                session, principal.actor, user, body.password, must_change=True
            )
        await session.flush()
        return UserOut.model_validate(user)
