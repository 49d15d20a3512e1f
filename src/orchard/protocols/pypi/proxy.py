"""The PyPI caching proxy (upstream indexes and files).

Interface used by router.py; implemented by the proxy work.
"""

from __future__ import annotations

from fastapi import Request, Response

from orchard.db.models import Project
from orchard.protocols.pypi.model import ProjectPage


async def upstream_page(request: Request, project: Project, name: str) -> ProjectPage | None:
    """The merged upstream page for normalised ``name`` with every file URL
    rewritten to an Orchard URL under ``/pypi/{project}/``, or None when no
    upstream has it (or upstreams are off / ORCHARD_OFFLINE with nothing cached)."""
    return None


async def upstream_file(request: Request, project: Project, path: str) -> Response | None:
    """Serve a proxied file (or its ``.metadata`` sidecar) from the URL space
    that ``upstream_page`` rewrote links into; None if ``path`` is not one."""
    return None
