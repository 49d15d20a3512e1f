"""Artifacts by SHA-256: metadata, references, dependencies, content."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from orchard.api.downloads import artifact_response
from orchard.api.schemas import ArtifactDetail, ArtifactOut, DependencyOut, ReferenceOut
from orchard.auth.policy import visible_projects
from orchard.auth.principal import Principal
from orchard.core import artifacts
from orchard.db.models import Artifact
from orchard.deps import CurrentPrincipal, DbDep, SettingsDep, StorageDep
from orchard.errors import NotFound

router = APIRouter(tags=["artifacts"])


async def visible_artifact(
    session: AsyncSession, principal: Principal, sha256: str
) -> tuple[Artifact, list[artifacts.Reference]]:
    """An artifact is visible to whoever may read one of the projects that
    reference it; unreferenced ones only to administrators."""
    artifact = await artifacts.get_artifact(session, sha256)
    if principal.is_admin and principal.token_projects is None:
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
        base = ArtifactOut.model_validate(artifact).model_dump(exclude={"sha256"})
        # ``sha256`` is read from the row's ``id`` (its validation alias).
        return ArtifactDetail.model_validate(
            {
                **base,
                "id": artifact.id,
                "references": [ReferenceOut(**vars(r)) for r in refs],
                "dependencies": [
                    DependencyOut(
                        ecosystem=d.ecosystem, name=d.name, specifier=d.specifier, kind=d.kind
                    )
                    for d in deps
                ],
            }
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
