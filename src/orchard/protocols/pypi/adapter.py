"""PyPI's implementation of the protocol adapter (protocols/base.py)."""

from __future__ import annotations

from fastapi import Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from orchard.api.urls import base_url
from orchard.db.models import Project
from orchard.protocols.base import ProtocolAdapter
from orchard.protocols.pypi import hosted, names, proxy, render
from orchard.protocols.pypi.model import ProjectPage


class PyPIAdapter(ProtocolAdapter[ProjectPage]):
    ecosystem = hosted.FORMAT

    def normalize(self, name: str) -> str:
        return names.normalize(name)

    async def hosted_page(
        self, session: AsyncSession, request: Request, project: Project, name: str
    ) -> ProjectPage | None:
        package = await hosted.hosted_package(session, project, name)
        if package is None:
            return None
        return await hosted.hosted_page(session, project, package, base_url(request))

    async def upstream_page(
        self, request: Request, project: Project, name: str
    ) -> ProjectPage | None:
        return await proxy.upstream_page(request, project, name)

    async def upstream_file(self, request: Request, project: Project, path: str) -> Response | None:
        return await proxy.upstream_file(request, project, path)

    def render(self, page: ProjectPage, media_type: str) -> bytes:
        return render.project_page(page, media_type)


ADAPTER = PyPIAdapter()
