"""Artifacts by SHA-256: metadata, references, dependencies, content."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from orchard.api.downloads import artifact_response
from orchard.api.schemas import ArtifactDetail, ArtifactOut, DependencyOut, ReferenceOut
from orchard.core import artifacts
from orchard.deps import DbDep, SettingsDep, StorageDep

router = APIRouter(tags=["artifacts"])


@router.get("/artifacts/{sha256}", response_model=ArtifactDetail)
async def get_artifact(sha256: str, db: DbDep) -> ArtifactDetail:
    async with db.session() as session:
        artifact = await artifacts.get_artifact(session, sha256)
        refs = await artifacts.references(session, artifact.id)
        deps = await artifacts.dependencies(session, artifact.id)
        base = ArtifactOut.model_validate(artifact)
        return ArtifactDetail(
            **base.model_dump(),
            references=[ReferenceOut(**vars(r)) for r in refs],
            dependencies=[
                DependencyOut(ecosystem=d.ecosystem, name=d.name, specifier=d.specifier,
                              kind=d.kind)
                for d in deps
            ],
        )


@router.api_route("/artifacts/{sha256}/content", methods=["GET", "HEAD"],
                  response_class=Response,
                  responses={200: {"content": {"application/octet-stream": {}}}})
async def get_content(
    sha256: str, request: Request, db: DbDep, storage: StorageDep, settings: SettingsDep
) -> Response:
    async with db.session() as session:
        artifact = await artifacts.get_artifact(session, sha256)
    return await artifact_response(request, artifact, storage, settings)
