"""Packages and versions of a project.

``{package}`` is one percent-encoded path segment, ``{format}:{name}`` or a
bare name (see api/urls.py): ``/project/p/packages/npm:%40babel%2Fcore``."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from orchard.api.schemas import FileOut, PackageIn, PackageOut, VersionOut, VersionPatch
from orchard.api.urls import PackageRef, SegmentRoute, file_url, package_url, version_url
from orchard.auth.policy import project_for
from orchard.core import catalog, names
from orchard.db.models import Artifact, Package, Project, Version
from orchard.deps import CurrentActor, CurrentPrincipal, DbDep

router = APIRouter(tags=["packages"], route_class=SegmentRoute)

PKG = "/project/{project}/packages/{package}"


def package_out(request: Request, project: Project, package: Package) -> PackageOut:
    return PackageOut(
        name=package.name,
        display_name=package.display_name,
        format=package.format,
        description=package.description,
        created_at=package.created_at,
        url=package_url(request, project.name, package.format, package.name),
    )


async def version_out(
    session: AsyncSession,
    request: Request,
    project: Project,
    package: Package,
    version: Version,
    with_files: bool,
) -> VersionOut:
    files = None
    if with_files:
        files = []
        for f in await catalog.list_files(session, version):
            artifact = await session.get(Artifact, f.artifact_id)
            assert artifact is not None
            files.append(
                FileOut(
                    filename=f.filename,
                    size=artifact.size,
                    sha256=artifact.id,
                    content_type=artifact.content_type,
                    created_at=f.created_at,
                    url=file_url(
                        request,
                        project.name,
                        package.format,
                        package.name,
                        version.version,
                        f.filename,
                    ),
                )
            )
    return VersionOut(
        version=version.version,
        created_at=version.created_at,
        yanked=version.yanked,
        yank_reason=version.yank_reason,
        deprecated=version.deprecated,
        meta=version.meta or {},
        files=files,
        url=version_url(request, project.name, package.format, package.name, version.version),
    )


@router.get("/project/{project}/packages", response_model=list[PackageOut])
async def list_packages(
    project: str,
    request: Request,
    db: DbDep,
    principal: CurrentPrincipal,
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=2**31 - 1),
    format: str | None = Query(None, max_length=16, description="only packages of this format"),
) -> list[PackageOut]:
    if format is not None:
        names.package_format(format)
    async with db.session() as session:
        row = await project_for(session, principal, project, "read")
        found = await catalog.list_packages(session, row, limit, offset, format)
        return [package_out(request, row, p) for p in found]


@router.post("/project/{project}/packages", response_model=PackageOut, status_code=201)
async def create_package(
    project: str,
    body: PackageIn,
    request: Request,
    db: DbDep,
    principal: CurrentPrincipal,
    actor: CurrentActor,
) -> PackageOut:
    names.package_format(body.format)
    async with db.transaction() as session:
        row = await project_for(session, principal, project, "write")
        package = await catalog.create_package(
            session, actor, row, body.name, body.format, body.description
        )
        return package_out(request, row, package)


@router.get(PKG, response_model=PackageOut)
async def get_package(
    project: str, package: PackageRef, request: Request, db: DbDep, principal: CurrentPrincipal
) -> PackageOut:
    async with db.session() as session:
        row = await project_for(session, principal, project, "read")
        return package_out(request, row, await catalog.resolve_package(session, row, package))


@router.delete(PKG, status_code=204)
async def delete_package(
    project: str, package: PackageRef, db: DbDep, principal: CurrentPrincipal, actor: CurrentActor
) -> Response:
    async with db.transaction() as session:
        row = await project_for(session, principal, project, "write")
        pkg = await catalog.resolve_package(session, row, package)
        await catalog.delete_package(session, actor, row, pkg)
    return Response(status_code=204)


@router.get(PKG + "/versions", response_model=list[VersionOut])
async def list_versions(
    project: str, package: PackageRef, request: Request, db: DbDep, principal: CurrentPrincipal
) -> list[VersionOut]:
    async with db.session() as session:
        row = await project_for(session, principal, project, "read")
        pkg = await catalog.resolve_package(session, row, package)
        return [
            await version_out(session, request, row, pkg, v, with_files=False)
            for v in await catalog.list_versions(session, pkg)
        ]


@router.get(PKG + "/versions/{version}", response_model=VersionOut)
async def get_version(
    project: str,
    package: PackageRef,
    version: str,
    request: Request,
    db: DbDep,
    principal: CurrentPrincipal,
) -> VersionOut:
    async with db.session() as session:
        row = await project_for(session, principal, project, "read")
        pkg = await catalog.resolve_package(session, row, package)
        ver = await catalog.get_version(session, pkg, version)
        return await version_out(session, request, row, pkg, ver, with_files=True)


@router.patch(PKG + "/versions/{version}", response_model=VersionOut)
async def update_version(
    project: str,
    package: PackageRef,
    version: str,
    body: VersionPatch,
    request: Request,
    db: DbDep,
    principal: CurrentPrincipal,
    actor: CurrentActor,
) -> VersionOut:
    async with db.transaction() as session:
        row = await project_for(session, principal, project, "write")
        pkg = await catalog.resolve_package(session, row, package)
        ver = await catalog.get_version(session, pkg, version)
        ver = await catalog.update_version(
            session, actor, row, ver, body.model_dump(exclude_unset=True)
        )
        return await version_out(session, request, row, pkg, ver, with_files=True)


@router.delete(PKG + "/versions/{version}", status_code=204)
async def delete_version(
    project: str,
    package: PackageRef,
    version: str,
    db: DbDep,
    principal: CurrentPrincipal,
    actor: CurrentActor,
) -> Response:
    async with db.transaction() as session:
        row = await project_for(session, principal, project, "write")
        pkg = await catalog.resolve_package(session, row, package)
        ver = await catalog.get_version(session, pkg, version)
        await catalog.delete_version(session, actor, row, pkg, ver)
    return Response(status_code=204)
