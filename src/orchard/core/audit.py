"""The audit log: every write records who, what, when and from where."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from orchard.db.models import AuditEntry


@dataclass(frozen=True)
class Actor:
    """Who is acting: a user name (or "anonymous", "system"), from which
    address, and with which credential (session, token:<id>, basic, cli)."""

    name: str
    address: str = ""
    credential: str = ""

    @classmethod
    def system(cls) -> Actor:
        return cls(name="system", credential="system")


def record(session: AsyncSession, actor: Actor, action: str, target: str, **detail: Any) -> None:
    """Add an audit entry to the session's transaction."""
    session.add(
        AuditEntry(
            actor=actor.name,
            action=action,
            target=target,
            address=actor.address,
            credential=actor.credential,
            detail=detail,
        )
    )
