"""HTTP endpoints of the Python protocol, one router for all of them.

::

    GET  /pypi/{project}/simple/                      project list
    GET  /pypi/{project}/simple/{name}/               project page (hosted, else upstream)
    GET  /pypi/{project}/files/{name}/{version}/{filename}[.metadata]   hosted files
    POST /pypi/{project}/   (and without the slash)   twine's legacy upload
    GET  /pypi/{project}/...                          anything else: the proxy's files
    /pypi/simple/...                                  alias of /pypi/proxy/simple/...

Pages are negotiated (negotiate.py), rendered fresh from the database for
hosted packages (a REST yank shows at once), and carry an ETag (the hash of
the body) answered with 304. Non-normalised names and missing trailing
slashes are 301 redirects. Dependency-confusion defence: a name hosted in the
project is served from the project only, never merged with an upstream page.
Errors keep the app's JSON error shape, which pip and twine print as is
(errors.py).
The routes are protocol endpoints, not REST API: they are left out of the
OpenAPI document (their permissions are tested in test_pypi_hosted.py).
"""

from __future__ import annotations

import hashlib

from fastapi import Request, Response
from fastapi.responses import PlainTextResponse, RedirectResponse

from orchard.api.downloads import artifact_response
from orchard.api.urls import base_url
from orchard.auth.policy import project_for
from orchard.auth.principal import Principal
from orchard.core import artifacts, catalog
from orchard.db.models import Project
from orchard.db.session import Database
from orchard.deps import CurrentActor, CurrentPrincipal, DbDep, SettingsDep, StorageDep
from orchard.errors import NotFound
from orchard.protocols import fetched
from orchard.protocols.base import format_router
from orchard.protocols.pypi import hosted, negotiate, render, upload
from orchard.protocols.pypi.errors import render_error
from orchard.protocols.pypi.service import SERVICE
from orchard.upstream.context import upstream_context

router = format_router(render_error)

ALIAS = "/pypi/simple"
INDEX = "/pypi/{project}/simple"
PAGE_HEADERS = {"Vary": "Accept", "Cache-Control": "max-age=0, must-revalidate"}


def _etag_matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    bare = etag.strip('"')
    return any(t.strip().removeprefix("W/").strip('"') in (bare, "*") for t in header.split(","))


def _media_type(request: Request) -> str | Response:
    chosen = negotiate.choose(request.headers.get("accept"), request.query_params.get("format"))
    if chosen is None:
        offers = ", ".join(negotiate.OFFERS)
        return PlainTextResponse(
            f"406 Not Acceptable: this index serves {offers}", status_code=406, headers=PAGE_HEADERS
        )
    return chosen


def _page(
    request: Request, row: Project, body: bytes, media_type: str, extra: dict[str, str]
) -> Response:
    etag = f'"{hashlib.sha256(body).hexdigest()[:40]}"'
    headers = {**PAGE_HEADERS, **extra, "ETag": etag}
    if _etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=negotiate.content_type(media_type), headers=headers)


def _redirect(request: Request, path: str) -> RedirectResponse:
    query = request.url.query
    return RedirectResponse(path + (f"?{query}" if query else ""), status_code=301)


async def _readable(
    request: Request, db: DbDep, principal: CurrentPrincipal, project: str
) -> Project:
    """The project, if ``principal`` may read it. For anonymous readers the
    row comes from the near cache when it can (no database read); any write
    drops it there, and a project that is not public is 404 as always."""
    if principal.authenticated:
        async with db.session() as session:
            return await project_for(session, principal, project, "read")
    near = request.app.state.near
    key = ("project", project)
    row: Project | None = near.recall(key)
    if row is None:
        generation = near.generation
        async with db.session() as session:
            row = await project_for(session, principal, project, "read")
        near.remember(key, generation, row)
    elif not row.is_public:
        raise NotFound(f"project {project!r} not found")
    return row


# --- the simple API ---------------------------------------------------------------------------


async def _index(
    request: Request, db: DbDep, principal: CurrentPrincipal, project: str
) -> Response:
    async with db.session() as session:
        row = await project_for(session, principal, project, "read")
        names = await hosted.hosted_names(session, row)
    media_type = _media_type(request)
    if isinstance(media_type, Response):
        return media_type
    return _page(request, row, render.project_list(names, media_type), media_type, {})


async def answer_page(
    request: Request, db: Database, principal: Principal, project: str, name: str, base: str
) -> Response:
    row = await _readable(request, db, principal, project)
    normal = SERVICE.normalize(name)
    if normal != name or not request.url.path.endswith("/"):
        return _redirect(request, f"{base}/{normal}/")
    page = None
    if not row.builtin:  # the built-in proxy project hosts nothing: its packages are caches
        async with db.session() as session:
            page = await SERVICE.hosted_page(session, row, normal, base_url(request))
    if page is None and row.upstream:
        ctx = upstream_context(request.app)
        page = await SERVICE.upstream_page(ctx, row, normal, base_url(request))
    if page is None:
        raise NotFound(f"no Python package {normal!r} in project {project!r}")
    media_type = _media_type(request)
    if isinstance(media_type, Response):
        return media_type
    extra = {"X-Orchard-Stale": "1", "Warning": '110 - "Response is Stale"'} if page.stale else {}
    return _page(request, row, SERVICE.render(page, media_type), media_type, extra)


@router.api_route(ALIAS, methods=["GET", "HEAD"])
async def alias_index_no_slash(request: Request) -> Response:
    return _redirect(request, f"{ALIAS}/")


@router.api_route(ALIAS + "/", methods=["GET", "HEAD"])
async def alias_index(request: Request, db: DbDep, principal: CurrentPrincipal) -> Response:
    return await _index(request, db, principal, catalog.PROXY_PROJECT)


@router.api_route(ALIAS + "/{name}", methods=["GET", "HEAD"])
@router.api_route(ALIAS + "/{name}/", methods=["GET", "HEAD"])
async def alias_page(
    request: Request, name: str, db: DbDep, principal: CurrentPrincipal
) -> Response:
    return await answer_page(request, db, principal, catalog.PROXY_PROJECT, name, ALIAS)


@router.api_route(INDEX, methods=["GET", "HEAD"])
async def index_no_slash(
    request: Request, project: str, db: DbDep, principal: CurrentPrincipal
) -> Response:
    await _readable(request, db, principal, project)
    return _redirect(request, f"/pypi/{project}/simple/")


@router.api_route(INDEX + "/", methods=["GET", "HEAD"])
async def index(request: Request, project: str, db: DbDep, principal: CurrentPrincipal) -> Response:
    return await _index(request, db, principal, project)


@router.api_route(INDEX + "/{name}", methods=["GET", "HEAD"])
@router.api_route(INDEX + "/{name}/", methods=["GET", "HEAD"])
async def project_page(
    request: Request, project: str, name: str, db: DbDep, principal: CurrentPrincipal
) -> Response:
    return await answer_page(request, db, principal, project, name, f"/pypi/{project}/simple")


# --- hosted files and uploads -----------------------------------------------------------------


FILE = "/pypi/{project}/files/{name}/{version}/{filename}"


# The sidecar has a route of its own only so that metrics count its requests apart.
@router.api_route(FILE + hosted.SIDECAR_SUFFIX, methods=["GET", "HEAD"])
async def hosted_metadata(
    request: Request,
    project: str,
    name: str,
    version: str,
    filename: str,
    db: DbDep,
    storage: StorageDep,
    settings: SettingsDep,
    principal: CurrentPrincipal,
) -> Response:
    """The PEP 658 sidecar of a hosted file: its exact METADATA bytes."""
    return await hosted_file(
        request, project, name, version, filename + hosted.SIDECAR_SUFFIX, db, storage,
        settings, principal,
    )


@router.api_route(FILE, methods=["GET", "HEAD"])
async def hosted_file(
    request: Request,
    project: str,
    name: str,
    version: str,
    filename: str,
    db: DbDep,
    storage: StorageDep,
    settings: SettingsDep,
    principal: CurrentPrincipal,
) -> Response:
    """A hosted distribution or its ``.metadata`` sidecar: Range, ETag, HEAD."""
    async with db.session() as session:
        row = await project_for(session, principal, project, "read")
        package = await hosted.hosted_package(session, row, name)
        if package is None:
            raise NotFound(f"no Python package {name!r} in project {project!r}")
        ver = await catalog.get_version(session, package, version)
        found = await catalog.get_file(session, ver, filename)
        artifact = await artifacts.get_artifact(session, found.artifact_id)
    return await artifact_response(request, artifact, storage, settings, filename)


@router.post("/pypi/{project}/")
@router.post("/pypi/{project}")
async def legacy_upload(
    request: Request,
    project: str,
    db: DbDep,
    storage: StorageDep,
    settings: SettingsDep,
    actor: CurrentActor,
    principal: CurrentPrincipal,
) -> Response:
    """twine upload (the legacy upload API); see upload.py."""
    async with db.session() as session:
        catalog.ensure_writable(await project_for(session, principal, project, "write"))
    async with request.form(
        max_files=4, max_fields=1000, max_part_size=upload.MAX_FIELD
    ) as form:
        result = await upload.receive(
            form, db, storage, actor, project, settings.max_upload_size
        )
    message = "OK" if result.created else "OK: this file was already uploaded (same content)"
    return PlainTextResponse(message, status_code=200)


@router.api_route("/pypi/{project}/{path:path}", methods=["GET", "HEAD"])
async def upstream_file(
    request: Request, project: str, path: str, db: DbDep, principal: CurrentPrincipal
) -> Response:
    """Any other path under the project belongs to the proxy."""
    return await answer_file(request, db, principal, project, path)


async def answer_file(
    request: Request, db: Database, principal: Principal, project: str, path: str
) -> Response:
    row = await _readable(request, db, principal, project)
    ctx = upstream_context(request.app)
    found = await SERVICE.upstream_file(ctx, row, path, stream=fetched.streams(request))
    if found is None:
        raise NotFound(f"not found: {request.url.path}")
    return await fetched.answer(request, ctx, found)
