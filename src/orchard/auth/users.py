"""User accounts and the first administrator."""

from __future__ import annotations

import logging
import re

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from orchard.auth.passwords import (
    check_policy,
    generate_password,
    hash_password,
)
from orchard.core.audit import Actor, record
from orchard.core.catalog import insert_for
from orchard.db.base import utcnow
from orchard.db.models import ApiToken, User, WebSession
from orchard.db.session import Database
from orchard.errors import Conflict, InvalidInput, NotFound
from orchard.settings import Settings

log = logging.getLogger("orchard.auth")

_USERNAME = re.compile(r"^[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?$")
RESERVED = frozenset({"anonymous", "system", "__token__", "cli"})


def username(value: str) -> str:
    name = value.strip().lower() if isinstance(value, str) else ""
    if not _USERNAME.fullmatch(name) or ".." in name or name in RESERVED:
        raise InvalidInput(f"invalid user name {value!r}")
    return name


async def get_user(session: AsyncSession, name: str) -> User:
    user = await session.scalar(select(User).where(User.username == name.strip().lower()))
    if user is None:
        raise NotFound(f"user {name!r} not found")
    return user


async def create_user(
    session: AsyncSession,
    actor: Actor,
    name: str,
    password: str,
    *,
    is_admin: bool = False,
    must_change_password: bool = False,
) -> User:
    name = username(name)
    check_policy(password)
    if await session.scalar(select(User.id).where(User.username == name)) is not None:
        raise Conflict(f"user {name!r} already exists")
    user = User(
        username=name,
        password_hash=await hash_password(password),
        is_admin=is_admin,
        must_change_password=must_change_password,
        created_at=utcnow(),
        password_changed_at=utcnow(),
    )
    session.add(user)
    await session.flush()
    record(session, actor, "user.create", name, is_admin=is_admin)
    return user


async def set_password(
    session: AsyncSession, actor: Actor, user: User, password: str, *, must_change: bool = False
) -> None:
    """Set a password; ends the user's web sessions elsewhere."""
    check_policy(password)
    user.password_hash = await hash_password(password)
    user.must_change_password = must_change
    user.password_changed_at = utcnow()
    await session.execute(delete(WebSession).where(WebSession.user_id == user.id))
    record(session, actor, "user.password", user.username)
    await session.flush()


async def _keep_an_active_admin(session: AsyncSession, user: User) -> None:
    """Refuse (Conflict) to take ``user`` out of the active administrators
    when no other would remain. The rows of the active administrators are
    locked first (PostgreSQL; SQLite write transactions run one at a time),
    so two requests demoting the last two administrators at once are
    decided one after the other and the second is refused."""
    active = list(
        await session.scalars(
            select(User.id)
            .where(User.is_admin.is_(True), User.disabled.is_(False))
            .order_by(User.id)
            .with_for_update()
        )
    )
    if active == [user.id]:
        raise Conflict(
            f"{user.username!r} is the last active administrator: "
            "make another user an administrator first"
        )


async def set_admin(session: AsyncSession, actor: Actor, user: User, is_admin: bool) -> None:
    """Promote or demote; the last active administrator stays one."""
    if is_admin == user.is_admin:
        return
    if not is_admin:
        await _keep_an_active_admin(session, user)
    user.is_admin = is_admin
    record(session, actor, "user.admin", user.username, is_admin=is_admin)
    await session.flush()


async def set_disabled(session: AsyncSession, actor: Actor, user: User, disabled: bool) -> None:
    """Disable (ending the user's web sessions) or enable; the last active
    administrator cannot be disabled."""
    if disabled and not user.disabled:
        await _keep_an_active_admin(session, user)
    user.disabled = disabled
    if disabled:
        await session.execute(delete(WebSession).where(WebSession.user_id == user.id))
    record(session, actor, "user.disable" if disabled else "user.enable", user.username)
    await session.flush()


async def ensure_first_admin(db: Database, settings: Settings) -> None:
    """Create ``admin`` when no user exists: with ORCHARD_ADMIN_PASSWORD, or
    a random password printed once to the log. Either way it must be changed
    at the first web sign-in."""
    async with db.session() as session:
        if await session.scalar(select(func.count(User.id))):
            return
    generated = settings.admin_password is None
    password = (
        generate_password()
        if settings.admin_password is None
        else settings.admin_password.get_secret_value()
    )
    now = utcnow()
    async with db.transaction() as session:
        created = await session.scalar(
            insert_for(session, User)
            .values(
                username="admin",
                password_hash=await hash_password(password),
                is_admin=True,
                disabled=False,
                must_change_password=True,
                created_at=now,
                password_changed_at=now,
            )
            .on_conflict_do_nothing(index_elements=["username"])
            .returning(User.id)
        )
        if created is None:
            return  # another replica won the race
        record(session, Actor.system(), "user.create", "admin", is_admin=True)
    if generated:
        # The one deliberate exception to "no secrets in logs" (DESIGN §5).
        print(f"orchard: created user 'admin' with generated password: {password}", flush=True)
        log.warning(
            "created user 'admin' with a generated password (printed once to stdout)",
            extra={"event": "bootstrap"},
        )
    else:
        log.info("created user 'admin' from ORCHARD_ADMIN_PASSWORD", extra={"event": "bootstrap"})


__all__ = ["ApiToken", "create_user", "ensure_first_admin", "get_user", "set_password"]
