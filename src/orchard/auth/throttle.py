"""Slowing down password guessing, per user name and per address.

Every password check is counted before the password is verified
(``attempt``), in one conditional statement per key, so parallel guesses
cannot all slip in before the first failure is recorded. A success gives its
count back (``succeeded``); a failure keeps it (``failed``).

After ``login_max_failures`` failures a key is blocked for 2, 4, 8 ...
seconds (at most 15 minutes) after each further failure. While a key's
count, checks in flight included, is at the limit and no failure has blocked
it yet, a further check waits a moment for those in flight instead of being
verified beside them. The counters live in the database, so every replica
enforces the same limits.
"""

from __future__ import annotations

import asyncio
import math
import time
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, delete, literal, or_, select, update

from orchard.core.catalog import insert_for
from orchard.db.base import utcnow
from orchard.db.models import LoginFailure
from orchard.db.session import Database
from orchard.db.types import UTCDateTime
from orchard.errors import TooManyRequests

MAX_BLOCK = 15 * 60
RESET_AFTER = timedelta(hours=1)
WAIT_FOR_IN_FLIGHT = 5.0  # seconds a check waits for the checks ahead of it
POLL = 0.05


def keys_for(username: str, address: str) -> list[str]:
    return [f"user:{username.strip().lower()[:150]}", f"addr:{address[:64]}"]


def block_for(over: int) -> int:
    """Seconds a key is blocked after its failure number ``limit + over``."""
    return min(MAX_BLOCK, 1 << min(over + 1, 20))


def _when(value: datetime) -> ColumnElement[Any]:
    return literal(value, UTCDateTime())


def _blocked_after(count: ColumnElement[int], limit: int, now: datetime) -> ColumnElement[Any]:
    """The block a check numbered ``count`` (beyond the limit) sets while it runs."""
    steps = [(count == limit + 1 + over, _when(now + timedelta(seconds=block_for(over + 1))))
             for over in range(10)]
    return case(*steps, else_=_when(now + timedelta(seconds=MAX_BLOCK)))


async def attempt(db: Database, keys: list[str], limit: int) -> None:
    """Count one password check against every key before it is verified.

    Raises TooManyRequests while a key is blocked, or when the checks in flight
    ahead of this one have not finished within a few seconds."""
    deadline = time.monotonic() + WAIT_FOR_IN_FLIGHT
    while True:
        now = utcnow()
        try:
            await _count(db, keys, limit, now)
            return
        except _Refused as refused:
            wait = refused.seconds
        if wait > 0 or time.monotonic() > deadline:
            seconds = max(1, wait)
            raise TooManyRequests(
                f"too many failed sign-ins; try again in {seconds} s", retry_after=seconds
            )
        await asyncio.sleep(POLL)


class _Refused(Exception):
    def __init__(self, seconds: int) -> None:
        self.seconds = seconds  # blocked this long; 0: at the limit with checks in flight


async def _count(db: Database, keys: list[str], limit: int, now: datetime) -> None:
    """Count the check on every key, or raise _Refused (nothing counted)."""
    table = LoginFailure
    fresh = table.last_failure_at >= now - RESET_AFTER
    count = case((fresh, table.failures + 1), else_=literal(1))
    free = or_(table.blocked_until.is_(None), table.blocked_until <= now)
    async with db.transaction() as session:
        for key in keys:
            await session.execute(
                insert_for(session, table)
                .values(key=key, failures=0, last_failure_at=now)
                .on_conflict_do_nothing(index_elements=["key"])
            )
            counted = await session.scalar(
                update(table)
                .where(
                    table.key == key,
                    free,
                    # Up to the limit freely; beyond it one check at a time, once a
                    # failure's block has run out (that check blocks the key meanwhile).
                    or_(count <= limit, and_(fresh, table.blocked_until.is_not(None))),
                )
                .values(
                    failures=count,
                    last_failure_at=now,
                    blocked_until=case(
                        (count > limit, _blocked_after(count, limit, now)),
                        else_=table.blocked_until,
                    ),
                )
                .returning(table.failures)
                .execution_options(synchronize_session=False)
            )
            if counted is None:  # refused: the counts of the keys before it roll back
                until = await session.scalar(select(table.blocked_until).where(table.key == key))
                left = (until - now).total_seconds() if until is not None else 0.0
                raise _Refused(math.ceil(left) if left > 0 else 0)


async def failed(db: Database, keys: list[str], limit: int) -> None:
    """The check counted by ``attempt`` failed: block a key that reached the limit."""
    now = utcnow()
    async with db.transaction() as session:
        for key in keys:
            row = await session.get(LoginFailure, key, with_for_update=True)
            if row is not None and row.failures >= limit:
                over = row.failures - limit
                row.blocked_until = now + timedelta(seconds=block_for(over))


async def succeeded(db: Database, keys: list[str]) -> None:
    """The check counted by ``attempt`` succeeded: the user's failures are
    forgotten, and the address gets its count back."""
    user_key, address_key = keys
    table = LoginFailure
    async with db.transaction() as session:
        await session.execute(delete(table).where(table.key == user_key))
        await session.execute(
            update(table)
            .where(table.key == address_key, table.failures > 0)
            .values(failures=table.failures - 1)
            .execution_options(synchronize_session=False)
        )
