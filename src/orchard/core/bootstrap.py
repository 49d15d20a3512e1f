"""What a fresh database needs: the built-in ``proxy`` project."""

from __future__ import annotations

from sqlalchemy import select

from orchard.core.catalog import PROXY_PROJECT, insert_for
from orchard.db.base import utcnow
from orchard.db.models import Project
from orchard.db.session import Database


async def ensure_builtin_projects(db: Database) -> None:
    async with db.transaction() as session:
        exists = await session.scalar(select(Project.id).where(Project.name == PROXY_PROJECT))
        if exists is not None:
            return
        now = utcnow()
        await session.execute(
            insert_for(session, Project)
            .values(
                name=PROXY_PROJECT,
                description="Read-only cache of the upstream registries.",
                is_public=True,
                upstream=True,
                builtin=True,
                created_at=now,
                updated_at=now,
            )
            .on_conflict_do_nothing(index_elements=["name"])
        )
