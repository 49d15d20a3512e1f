"""The audit log, newest first."""

from __future__ import annotations

from fastapi import APIRouter, Query
from sqlalchemy import select

from orchard.api.schemas import AuditOut
from orchard.auth.policy import require_admin
from orchard.core import names
from orchard.db.models import AuditEntry
from orchard.deps import CurrentPrincipal, DbDep

router = APIRouter(tags=["audit"])


@router.get("/audit", response_model=list[AuditOut])
async def list_audit(
    db: DbDep,
    principal: CurrentPrincipal,
    action: str | None = Query(None, max_length=64),
    actor: str | None = Query(None, max_length=150),
    target: str | None = Query(None, max_length=500, description="prefix of the target"),
    limit: int = Query(100, ge=1, le=1000),
    before: int | None = Query(
        None, ge=0, le=2**31 - 1, description="entries with an id below this (ids are 32-bit)"
    ),
) -> list[AuditOut]:
    require_admin(principal)
    names.query_term("action", action)
    names.query_term("actor", actor)
    names.query_term("target", target)
    stmt = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if action:
        stmt = stmt.where(AuditEntry.action == action)
    if actor:
        stmt = stmt.where(AuditEntry.actor == actor)
    if target:
        stmt = stmt.where(AuditEntry.target.startswith(target, autoescape=True))
    if before is not None:
        stmt = stmt.where(AuditEntry.id < before)
    async with db.session() as session:
        return [AuditOut.model_validate(e) for e in await session.scalars(stmt)]
