"""The routes of a format whose protocol is not served yet (npm and Go
until their issues): every request under ``/{prefix}/{project}/`` is
authorized like a read of the project, asked of the format's service as a
page (or a file, for a path the service knows as one) and, as the shells'
services answer nothing, refused with 404 in the format's own form."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from orchard.api.urls import base_url
from orchard.auth.policy import project_for
from orchard.deps import CurrentPrincipal, DbDep
from orchard.errors import InvalidInput, NotFound
from orchard.protocols import fetched
from orchard.protocols.base import ErrorForm, FormatService, format_router
from orchard.upstream.context import upstream_context

METHODS = ["GET", "HEAD", "PUT", "POST", "DELETE"]


def shell_router(
    prefix: str, service: FormatService[Any], errors: ErrorForm, media_type: str
) -> APIRouter:
    router = format_router(errors)

    @router.api_route(f"/{prefix}/{{project}}/{{path:path}}", methods=METHODS)
    async def anything(
        request: Request, project: str, path: str, db: DbDep, principal: CurrentPrincipal
    ) -> Response:
        async with db.session() as session:
            row = await project_for(session, principal, project, "read")
            if request.method not in ("GET", "HEAD"):
                raise NotFound("not found")
            try:
                name = service.normalize(path)
            except InvalidInput:
                name = None
            page = None
            if name is not None:
                page = await service.hosted_page(session, row, name, base_url(request))
        ctx = upstream_context(request.app)
        if page is None and name is not None and row.upstream:
            page = await service.upstream_page(ctx, row, name, base_url(request))
        if page is not None:
            return Response(service.render(page, media_type), media_type=media_type)
        found = await service.upstream_file(ctx, row, path, stream=fetched.streams(request))
        if found is None:
            raise NotFound("not found")
        return await fetched.answer(request, ctx, found)

    return router
