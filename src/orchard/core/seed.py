"""Example data for development (``orchard serve --dev``)."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator

from sqlalchemy import func, select

from orchard.core import artifacts, catalog
from orchard.core.audit import Actor
from orchard.db.models import Package
from orchard.db.session import Database
from orchard.storage.base import ArtifactStore

log = logging.getLogger("orchard.seed")

EXAMPLES = [
    (
        "demo",
        "Example hosted project",
        True,
        [
            ("hello-tool", "generic", ["1.0.0", "1.1.0"]),
            ("shared-config", "generic", ["2024.1"]),
        ],
    ),
    (
        "team-internal",
        "A private team project",
        False,
        [
            ("build-scripts", "generic", ["0.1.0"]),
        ],
    ),
]


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def seed_if_empty(db: Database, storage: ArtifactStore) -> bool:
    """Fill an empty database with example projects; returns whether it did."""
    async with db.session() as session:
        if await session.scalar(select(func.count(Package.id))):
            return False
    actor = Actor.system()
    for project_name, description, public, packages in EXAMPLES:
        async with db.transaction() as session:
            project = await catalog.create_project(
                session, actor, project_name, description, is_public=public
            )
            for package_name, fmt, versions in packages:
                for version in versions:
                    body = json.dumps({"package": package_name, "version": version}).encode()
                    staged = await storage.stage(_one(body))
                    await artifacts.add_file(
                        session,
                        storage,
                        actor,
                        project=project,
                        package_name=package_name,
                        version=version,
                        filename=f"{package_name}-{version}.json",
                        staged=staged,
                        package_format=fmt,
                        content_type="application/json",
                    )
    log.info("seeded example projects", extra={"event": "seed"})
    return True
