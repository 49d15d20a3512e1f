"""What every ecosystem adapter (PyPI, npm, Go) provides to its router.

An adapter is the ecosystem-specific half of a protocol endpoint set; the
router does HTTP (auth, redirects, conditional requests) and asks the adapter
for the rest:

- ``normalize``: the canonical spelling of a package name (PEP 503 for PyPI,
  lower case for npm, the module path for Go); hosted packages are stored
  under it and non-canonical request URLs are redirected to it;
- ``hosted_page``: the index page of a hosted package, from the database;
- ``upstream_page``: the same page from the project's upstreams (the proxy
  half), or None;
- ``upstream_file``: a proxied file, fetched and cached on first request, or
  None when the path is not one the proxy owns;
- ``render``: the page serialised for one negotiated media type.

The page type is the adapter's own (``pypi.model.ProjectPage``, a packument,
a version list), so nothing here pretends the ecosystems are alike.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Generic, TypeVar

from fastapi import Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from orchard.db.models import Project

PageT = TypeVar("PageT")


class ProtocolAdapter(ABC, Generic[PageT]):
    """One ecosystem's names, pages and upstream hooks."""

    #: ``Package.format`` of the packages this adapter serves.
    ecosystem: str

    @abstractmethod
    def normalize(self, name: str) -> str:
        """The canonical name; InvalidInput when ``name`` cannot be one."""

    @abstractmethod
    async def hosted_page(
        self, session: AsyncSession, request: Request, project: Project, name: str
    ) -> PageT | None:
        """The page of hosted package ``name`` (normalised), or None when the
        project hosts no package of that name in this ecosystem."""

    @abstractmethod
    async def upstream_page(self, request: Request, project: Project, name: str) -> PageT | None:
        """The page of ``name`` from the project's upstreams, or None."""

    @abstractmethod
    async def upstream_file(self, request: Request, project: Project, path: str) -> Response | None:
        """Serve a proxied file under the project's URL space, or None."""

    @abstractmethod
    def render(self, page: PageT, media_type: str) -> bytes:
        """``page`` serialised as ``media_type`` (one the router negotiated)."""
