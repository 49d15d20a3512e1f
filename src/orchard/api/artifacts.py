"""Artifacts by SHA-256: metadata, references, dependencies, content."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from orchard.api.downloads import artifact_response
from orchard.api.schemas import DependencyOut, ReferenceOut
from orchard.auth.policy import visible_projects
from orchard.auth.principal import Principal
from orchard.core import artifacts
from orchard.db.models import Artifact
from orchard.deps import CurrentPrincipal, DbDep, SettingsDep, StorageDep
from orchard.errors import NotFound

router = APIRouter(tags=["artifacts"])


class ArtifactDetail(BaseModel):
    """An artifact, the files you may see that reference it, and its
    dependencies."""

    sha256: str
    size: int
    content_type: str
    md5: str
    sha1: str
    sha512: str
    ref_count: int | None = Field(
        None,
        description="how many files reference the artifact, in every project; only for "
        "an administrator whose credential is not restricted to projects (null otherwise: "
        "it would tell of files in projects the caller cannot read)",
    )
    created_at: datetime
    references: list[ReferenceOut]
    dependencies: list[DependencyOut]


def sees_everything(principal: Principal) -> bool:
    """An administrator whose credential is not restricted to projects."""
    return principal.is_admin and principal.token_projects is None


async def visible_artifact(
    session: AsyncSession, principal: Principal, sha256: str
) -> tuple[Artifact, list[artifacts.Reference]]:
    """An artifact is visible to whoever may read one of the projects that
    reference it; unreferenced ones only to administrators."""
    artifact = await artifacts.get_artifact(session, sha256)
    if sees_everything(principal):
        return artifact, await artifacts.references(session, artifact.id)
    refs = await artifacts.references(session, artifact.id, visible=visible_projects(principal))
    if not refs:
        raise NotFound(f"artifact {sha256!r} not found")
    return artifact, refs


@router.get("/artifacts/{sha256}", response_model=ArtifactDetail)
async def get_artifact(sha256: str, db: DbDep, principal: CurrentPrincipal) -> ArtifactDetail:
    """An artifact and the files that reference it (those you may see)."""
    async with db.session() as session:
        artifact, refs = await visible_artifact(session, principal, sha256)
        deps = await artifacts.dependencies(session, artifact.id)
        return ArtifactDetail(
            sha256=artifact.id,
            size=artifact.size,
            content_type=artifact.content_type,
            md5=artifact.md5,
            sha1=artifact.sha1,
            sha512=artifact.sha512,
            ref_count=artifact.ref_count if sees_everything(principal) else None,
            created_at=artifact.created_at,
            references=[ReferenceOut(**vars(r)) for r in refs],
            dependencies=[
                DependencyOut(format=d.format, name=d.name, specifier=d.specifier, kind=d.kind)
                for d in deps
            ],
        )


@router.get(
    "/artifacts/{sha256}/content",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
@router.head("/artifacts/{sha256}/content", response_class=Response)
async def get_content(
    sha256: str,
    request: Request,
    db: DbDep,
    storage: StorageDep,
    settings: SettingsDep,
    principal: CurrentPrincipal,
) -> Response:
    """The bytes of an artifact, if a project you may read references it."""
    async with db.session() as session:
        artifact, _ = await visible_artifact(session, principal, sha256)
    return await artifact_response(request, artifact, storage, settings)
