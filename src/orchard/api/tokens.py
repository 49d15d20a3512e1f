"""API tokens: /api/v1/tokens. A token is shown once, at creation."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession

from orchard.auth import tokens, users
from orchard.auth.policy import require_admin, require_user, require_write_scope
from orchard.auth.principal import Principal
from orchard.db.models import ApiToken, User
from orchard.deps import CurrentPrincipal, DbDep
from orchard.errors import Forbidden, NotFound

router = APIRouter(prefix="/tokens", tags=["tokens"])


class TokenIn(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    scope: str = Field("read", pattern="^(read|write)$")
    expires_at: datetime | None = None
    projects: list[str] | None = Field(
        None, max_length=100, description="restrict the token to these projects"
    )
    user: str | None = Field(None, description="administrators: create for another user")


class TokenOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    name: str
    prefix: str
    scope: str
    projects: list[str] | None
    expires_at: datetime | None
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class TokenCreated(TokenOut):
    token: str = Field(description="the secret; shown only now")


TokenId = Annotated[int, Path(ge=1, le=tokens.MAX_TOKEN_ID)]


def _no_token_minting(principal: Principal) -> None:
    require_user(principal)
    if principal.scope != "write":
        raise Forbidden("a read-only token cannot create tokens")


async def _own_token(session: AsyncSession, principal: Principal) -> ApiToken | None:
    """The token the request authenticated with, if it did with one."""
    token_id = tokens.token_id_of(principal.credential)
    return await session.get(ApiToken, token_id) if token_id is not None else None


@router.get("", response_model=list[TokenOut])
async def list_tokens(
    db: DbDep,
    principal: CurrentPrincipal,
    user: str | None = Query(None, description="administrators: another user's tokens"),
) -> list[TokenOut]:
    require_user(principal)
    async with db.session() as session:
        if user is not None and user != principal.username:
            require_admin(principal)
            owner: User = await users.get_user(session, user)
        else:
            owner_row = await session.get(User, principal.user_id)
            assert owner_row is not None
            owner = owner_row
        return [TokenOut.model_validate(t) for t in await tokens.list_tokens(session, owner)]


@router.post("", response_model=TokenCreated, status_code=201)
async def create_token(body: TokenIn, db: DbDep, principal: CurrentPrincipal) -> TokenCreated:
    _no_token_minting(principal)
    async with db.transaction() as session:
        if body.user is not None and body.user != principal.username:
            require_admin(principal)
            owner = await users.get_user(session, body.user)
        else:
            row = await session.get(User, principal.user_id)
            assert row is not None
            owner = row
        parent = await _own_token(session, principal)
        if parent is not None:  # a token creates no broader, no longer-lived token
            tokens.check_within(parent, body.scope, body.expires_at, body.projects)
        token, secret = await tokens.create_token(
            session,
            principal.actor,
            owner,
            body.name,
            body.scope,
            expires_at=body.expires_at,
            projects=body.projects,
        )
        return TokenCreated(**TokenOut.model_validate(token).model_dump(), token=secret)


@router.delete("/{token_id}", status_code=204)
async def revoke_token(token_id: TokenId, db: DbDep, principal: CurrentPrincipal) -> Response:
    require_user(principal)
    require_write_scope(principal)
    async with db.transaction() as session:
        token: ApiToken = await tokens.get_token(session, token_id)
        if token.user_id != principal.user_id:
            if not principal.is_admin:
                raise NotFound(f"token {token_id} not found")
            require_admin(principal)
        parent = await _own_token(session, principal)
        if parent is not None and not tokens.may_revoke(parent, token):
            raise Forbidden("a project-restricted token cannot revoke a broader token")
        await tokens.revoke(session, principal.actor, token)
    return Response(status_code=204)
