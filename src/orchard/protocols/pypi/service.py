"""PyPI's protocol verbs, HTTP-free (``protocols/base.FormatService``):
names, hosted and upstream pages, proxied files, rendering."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from orchard.db.models import Project
from orchard.protocols.base import FormatService
from orchard.protocols.pypi import hosted, names, proxy, render
from orchard.protocols.pypi.model import ProjectPage
from orchard.upstream.context import UpstreamContext
from orchard.upstream.files import Found


class PypiService(FormatService[ProjectPage]):
    format = hosted.FORMAT

    def normalize(self, name: str) -> str:
        return names.normalize(name)

    async def hosted_page(
        self, session: AsyncSession, project: Project, name: str, base: str
    ) -> ProjectPage | None:
        package = await hosted.hosted_package(session, project, name)
        if package is None:
            return None
        return await hosted.hosted_page(session, project, package, base)

    async def upstream_page(
        self, ctx: UpstreamContext, project: Project, name: str, base: str
    ) -> ProjectPage | None:
        return await proxy.upstream_page(ctx, project, name, base)

    async def upstream_file(
        self, ctx: UpstreamContext, project: Project, path: str, *, stream: bool
    ) -> Found | None:
        return await proxy.upstream_file(ctx, project, path, stream=stream)

    def render(self, page: ProjectPage, media_type: str) -> bytes:
        return render.project_page(page, media_type)


SERVICE = PypiService()
