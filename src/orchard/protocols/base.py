"""What every format (PyPI, npm, Go, …) provides: its entry in the table
the app mounts (``registry.py``), the service its router calls, and its
error form.

A format's room (``protocols/<format>/``) is shaped like Athens' Go proxy:

- ``service.py``: the protocol's verbs with no HTTP in them (a subclass of
  ``FormatService``): what a client may ask, answered from hosted data,
  then from upstream through the shared services (``upstream/documents.py``
  for cached upstream documents, ``upstream/files.py`` for fetch-once with
  the format's own digest, ``upstream/stored.py`` for storing the file);
- ``router.py``: thin HTTP (parse, authorize, call the service, render),
  made with ``format_router`` so that every ``OrchardError`` its routes
  raise is answered in the client's own form (``ErrorForm``);
- ``names.py``, ``render.py``: the name rules and the wire formats.

The format's page type is its own (a PyPI project page, an npm packument,
a Go version list): nothing here pretends the formats are alike.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from fastapi import APIRouter, Request, Response
from fastapi.routing import APIRoute
from sqlalchemy.ext.asyncio import AsyncSession

from orchard.db.models import Project
from orchard.errors import OrchardError
from orchard.settings import Settings
from orchard.upstream.context import UpstreamContext

if TYPE_CHECKING:
    from orchard.core.names import NameRules
    from orchard.upstream.digests import Digest
    from orchard.upstream.files import Found

PageT = TypeVar("PageT")

ErrorForm = Callable[[Request, OrchardError], Awaitable[Response]]
"""A domain error as the format's clients expect it (pip's JSON, npm's
``{"error": …}``, Go's plain text)."""

RouterSpec = APIRouter | Callable[[Settings], APIRouter]
Hook = Callable[[Any], Awaitable[None]]  # called with the app, in its lifespan


class FormatService(ABC, Generic[PageT]):
    """One format's protocol verbs, HTTP-free. ``base`` is the public URL
    the answers link under (``api/urls.base_url`` of the request)."""

    #: ``Package.format`` of the packages this service serves.
    format: str

    @abstractmethod
    def normalize(self, name: str) -> str:
        """The canonical name; InvalidInput when ``name`` cannot be one."""

    @abstractmethod
    async def hosted_page(
        self, session: AsyncSession, project: Project, name: str, base: str
    ) -> PageT | None:
        """The page of hosted package ``name`` (normalised), or None when the
        project hosts no package of that name in this format."""

    @abstractmethod
    async def upstream_page(
        self, ctx: UpstreamContext, project: Project, name: str, base: str
    ) -> PageT | None:
        """The page of ``name`` from the project's upstreams, or None."""

    @abstractmethod
    async def upstream_file(
        self, ctx: UpstreamContext, project: Project, path: str, *, stream: bool
    ) -> Found | None:
        """A proxied file under the project's URL space (stored, or arriving
        when ``stream``: see ``upstream/files.fetch_once``), or None when
        ``path`` is not one the proxy owns."""

    @abstractmethod
    def render(self, page: PageT, media_type: str) -> bytes:
        """``page`` serialised as ``media_type`` (one the router negotiated)."""


@dataclass(frozen=True)
class UpstreamRules:
    """How a format reaches its upstreams: the key of its sources
    (``ORCHARD_UPSTREAM_<KEY>_URL`` and the upstream rows of that
    format; None: it has none) and the kind of digest its indexes give
    for a file (``upstream/digests.py``)."""

    sources: str | None
    digest: type[Digest] | None = None


@dataclass(frozen=True)
class Format:
    """One line of the table of formats (``registry.py``)."""

    name: str  # Package.format
    router: RouterSpec
    names: Callable[[str], NameRules]  # the name rules of a format, by name
    errors: ErrorForm
    upstream: UpstreamRules
    on_start: tuple[Hook, ...] = ()
    on_stop: tuple[Hook, ...] = ()

    def router_for(self, settings: Settings) -> APIRouter:
        if isinstance(self.router, APIRouter):
            return self.router
        return self.router(settings)

    @property
    def name_rules(self) -> NameRules:
        return self.names(self.name)


def format_router(errors: ErrorForm) -> APIRouter:
    """An APIRouter whose routes answer an ``OrchardError`` (raised by the
    handler or one of its dependencies, e.g. a refused credential) in the
    form ``errors`` gives. Protocol routes are not REST API: they are left
    out of the OpenAPI document."""

    class FormatRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()

            async def answer(request: Request) -> Response:
                try:
                    return await handler(request)
                except OrchardError as exc:
                    return await errors(request, exc)

            return answer

    return APIRouter(include_in_schema=False, route_class=FormatRoute)
