"""External URLs: ORCHARD_BASE_URL when set, else the request's own."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import Request


def base_url(request: Request) -> str:
    configured = request.app.state.settings.base_url
    if configured:
        return str(configured).rstrip("/")
    return str(request.base_url).rstrip("/")


def file_url(request: Request, project: str, package: str, version: str, filename: str) -> str:
    q = [quote(p, safe="") for p in (project, package, version, filename)]
    return f"{base_url(request)}/api/v1/project/{q[0]}/packages/{q[1]}/versions/{q[2]}/files/{q[3]}"
