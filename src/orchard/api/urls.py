"""External URLs (ORCHARD_BASE_URL when set, else the request's own), and
the one URL form of a package in the REST API.

A package is one path segment, ``{format}:{name}`` with the name
percent-encoded as a whole (``/`` is ``%2F``, ``@`` is ``%40``, as npm
does): ``/api/v1/project/p/packages/npm:%40babel%2Fcore/versions``. The
``{format}:`` prefix may be left out when the name is unique in the project
(several formats → 409). ``SegmentRoute`` routes these URLs by their raw
segments, so a name that contains ``/`` (an npm scope, a Go module path,
even one with a ``versions`` element) reaches the right route.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote, unquote

from fastapi import Path, Request
from fastapi.routing import APIRoute
from starlette.routing import Match
from starlette.types import Scope

from orchard.core.catalog import FORMAT_SEPARATOR

PackageRef = Annotated[
    str,
    Path(
        description=(
            "The package: ``{format}:{name}`` (or a bare name when only one format has it), "
            "sent percent-encoded as ONE path segment, ``/`` as ``%2F``: ``npm:@babel/core`` "
            "travels as ``npm:%40babel%2Fcore``, ``go:github.com/pkg/errors`` as "
            "``go:github.com%2Fpkg%2Ferrors``."
        ),
        examples=["npm:@babel/core"],
    ),
]


def base_url(request: Request) -> str:
    configured = request.app.state.settings.base_url
    if configured:
        return str(configured).rstrip("/")
    return str(request.base_url).rstrip("/")


def package_segment(fmt: str, name: str) -> str:
    """``npm``, ``@babel/core`` → ``npm:%40babel%2Fcore``."""
    return f"{fmt}{FORMAT_SEPARATOR}{quote(name, safe='')}"


def package_url(request: Request, project: str, fmt: str, name: str) -> str:
    return (
        f"{base_url(request)}/api/v1/project/{quote(project, safe='')}"
        f"/packages/{package_segment(fmt, name)}"
    )


def version_url(request: Request, project: str, fmt: str, name: str, version: str) -> str:
    return f"{package_url(request, project, fmt, name)}/versions/{quote(version, safe='')}"


def file_url(
    request: Request, project: str, fmt: str, name: str, version: str, filename: str
) -> str:
    return f"{version_url(request, project, fmt, name, version)}/files/{quote(filename, safe='')}"


# --- routing by raw segments -------------------------------------------------------------------

_SEGMENT_PATH = "orchard.segment_path"  # the scope key the re-encoded path is kept under


def _segment_path(scope: Scope) -> str | None:
    """The request path with each segment decoded on its own and its ``%``
    and ``/`` encoded again (``%25``, ``%2F``): a path in which ``/`` only
    separates segments. None when the server gave no raw path, or one that
    does not decode to the path (then routing stays Starlette's own)."""
    if _SEGMENT_PATH in scope:
        return scope[_SEGMENT_PATH]  # type: ignore[no-any-return]
    raw = scope.get("raw_path")
    path = None
    if isinstance(raw, bytes):
        text = raw.decode("latin-1").partition("?")[0]
        if unquote(text) == scope["path"]:
            path = "/".join(
                unquote(s).replace("%", "%25").replace("/", "%2F") for s in text.split("/")
            )
    scope[_SEGMENT_PATH] = path
    return path


class SegmentRoute(APIRoute):
    """An API route matched against the raw path, segment by segment: a
    ``{param}`` holds one percent-encoded segment, ``%2F`` included, and
    arrives decoded."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        path = _segment_path(scope) if scope["type"] == "http" else None
        if path is None:
            return super().matches(scope)
        match, child = super().matches({**scope, "path": path})
        params: dict[str, Any] | None = child.get("path_params")
        if params:
            child["path_params"] = {
                key: unquote(value) if key in self.param_convertors else value
                for key, value in params.items()
            }
        return match, child
