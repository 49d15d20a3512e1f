"""npm's protocol verbs, HTTP-free (``protocols/base.FormatService``).

A shell for now: it knows npm's names and answers nothing yet (the next
issue brings packuments, tarballs and publishing, on the shared services:
cached packuments in ``upstream/documents.py``, tarballs fetched once and
checked against ``dist.integrity`` with ``upstream/digests.Integrity``)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from orchard.core import names as core_names
from orchard.db.models import Project
from orchard.protocols.base import FormatService
from orchard.upstream.context import UpstreamContext
from orchard.upstream.files import Found

FORMAT = "npm"
Packument = dict[str, Any]


class NpmService(FormatService[Packument]):
    format = FORMAT

    def normalize(self, name: str) -> str:
        return core_names.package_name(name, FORMAT)

    async def hosted_page(
        self, session: AsyncSession, project: Project, name: str, base: str
    ) -> Packument | None:
        return None

    async def upstream_page(
        self, ctx: UpstreamContext, project: Project, name: str, base: str
    ) -> Packument | None:
        return None

    async def upstream_file(
        self, ctx: UpstreamContext, project: Project, path: str, *, stream: bool
    ) -> Found | None:
        return None

    def render(self, page: Packument, media_type: str) -> bytes:
        return json.dumps(page, separators=(",", ":")).encode()


SERVICE = NpmService()
