"""Go's module proxy verbs, HTTP-free (``protocols/base.FormatService``).

A shell for now: it knows Go's module paths and answers nothing yet (the
next issue brings list, info, mod, zip and latest, on the shared services:
version lists in ``upstream/documents.py``, zips fetched once and checked
against their ``h1:`` hash with ``upstream/digests.GoModuleHash``)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from orchard.core import names as core_names
from orchard.db.models import Project
from orchard.protocols.base import FormatService
from orchard.upstream.context import UpstreamContext
from orchard.upstream.files import Found

FORMAT = "go"
VersionList = list[str]


class GoService(FormatService[VersionList]):
    format = FORMAT

    def normalize(self, name: str) -> str:
        return core_names.package_name(name, FORMAT)

    async def hosted_page(
        self, session: AsyncSession, project: Project, name: str, base: str
    ) -> VersionList | None:
        return None

    async def upstream_page(
        self, ctx: UpstreamContext, project: Project, name: str, base: str
    ) -> VersionList | None:
        return None

    async def upstream_file(
        self, ctx: UpstreamContext, project: Project, path: str, *, stream: bool
    ) -> Found | None:
        return None

    def render(self, page: VersionList, media_type: str) -> bytes:
        return "".join(f"{version}\n" for version in page).encode()


SERVICE = GoService()
