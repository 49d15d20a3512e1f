"""Slowing down password guessing, per user name and per address.

After ``login_max_failures`` failures a key is blocked for 2, 4, 8 ... seconds
(at most 15 minutes) after each further failure. The counters live in the
database, so every replica enforces the same limits.
"""

from __future__ import annotations

import math
from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from orchard.core.catalog import insert_for
from orchard.db.base import utcnow
from orchard.db.models import LoginFailure
from orchard.db.session import Database
from orchard.errors import TooManyRequests

MAX_BLOCK = 15 * 60
RESET_AFTER = timedelta(hours=1)


def keys_for(username: str, address: str) -> list[str]:
    return [f"user:{username.strip().lower()[:150]}", f"addr:{address[:64]}"]


async def check(session: AsyncSession, keys: list[str]) -> None:
    now = utcnow()
    for key in keys:
        row = await session.get(LoginFailure, key)
        if row is not None and row.blocked_until is not None and row.blocked_until > now:
            wait = math.ceil((row.blocked_until - now).total_seconds())
            raise TooManyRequests(
                f"too many failed sign-ins; try again in {wait} s", retry_after=wait
            )


async def failed(db: Database, keys: list[str], max_failures: int) -> None:
    now = utcnow()
    async with db.transaction() as session:
        for key in keys:
            await session.execute(
                insert_for(session, LoginFailure)
                .values(key=key, failures=0, last_failure_at=now)
                .on_conflict_do_nothing(index_elements=["key"])
            )
            row = await session.get(LoginFailure, key, with_for_update=True, populate_existing=True)
            assert row is not None
            if now - row.last_failure_at > RESET_AFTER:
                row.failures = 0
            row.failures += 1
            row.last_failure_at = now
            over = row.failures - max_failures
            if over >= 0:
                row.blocked_until = now + timedelta(seconds=min(MAX_BLOCK, 2 ** (over + 1)))


async def succeeded(db: Database, username: str) -> None:
    async with db.transaction() as session:
        await session.execute(
            delete(LoginFailure).where(LoginFailure.key == keys_for(username, "")[0])
        )
