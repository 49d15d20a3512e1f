"""Serialising simple-API pages: PEP 503 HTML and PEP 691 JSON (API 1.1).

HTML carries PEP 592 ``data-yanked``, ``data-requires-python`` (escaped) and
the PEP 658/714 sidecar hash under both ``data-core-metadata`` and the legacy
``data-dist-info-metadata``; JSON carries PEP 700's ``versions``, ``size`` and
``upload-time``, always a ``hashes`` object, and only ``core-metadata`` (pip
22.3 to 23.1 break on the legacy JSON key, PEP 714).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from html import escape
from typing import Any

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from orchard.protocols.pypi.model import DistFile, ProjectPage
from orchard.protocols.pypi.negotiate import JSON_V1

API_VERSION = "1.1"
_HASH_PREFERENCE = ("sha256", "sha512", "sha384", "sha224")


def upload_time(value: datetime) -> str:
    """UTC ``yyyy-mm-ddThh:mm:ss.ffffffZ`` (naive datetimes are UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _version_key(version: str) -> tuple[int, Version | str]:
    try:
        return (1, Version(version))
    except InvalidVersion:
        return (0, version)


def sorted_versions(versions: Iterable[str]) -> list[str]:
    return sorted(set(versions), key=_version_key)


def _fragment(hashes: dict[str, str]) -> str:
    for name in _HASH_PREFERENCE:
        if name in hashes:
            return f"#{name}={hashes[name]}"
    return ""


def _metadata_value(core_metadata: dict[str, str]) -> str:
    for name in _HASH_PREFERENCE:
        if name in core_metadata:
            return f"{name}={core_metadata[name]}"
    return "true"


def _anchor(f: DistFile) -> str:
    attrs = [f'href="{escape(f.url + _fragment(f.hashes), quote=True)}"']
    if f.requires_python:
        attrs.append(f'data-requires-python="{escape(f.requires_python, quote=True)}"')
    if f.yanked is not False:
        reason = f.yanked if isinstance(f.yanked, str) else ""
        attrs.append(f'data-yanked="{escape(reason, quote=True)}"')
    if f.core_metadata is not None:
        value = escape(_metadata_value(f.core_metadata), quote=True)
        attrs.append(f'data-core-metadata="{value}"')
        attrs.append(f'data-dist-info-metadata="{value}"')
    return f"<a {' '.join(attrs)}>{escape(f.filename)}</a><br>"


def _html(title: str, body: Iterable[str]) -> bytes:
    head = (
        "<!DOCTYPE html>\n<html><head>"
        f'<meta name="pypi:repository-version" content="{API_VERSION}">'
        f"<title>{escape(title)}</title></head>\n<body>\n<h1>{escape(title)}</h1>\n"
    )
    return (head + "\n".join(body) + "\n</body></html>\n").encode()


def _json(document: dict[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def _file_json(f: DistFile) -> dict[str, Any]:
    out: dict[str, Any] = {"filename": f.filename, "url": f.url, "hashes": dict(f.hashes)}
    if f.requires_python:
        out["requires-python"] = f.requires_python
    if f.size is not None:
        out["size"] = f.size
    if f.upload_time is not None:
        out["upload-time"] = upload_time(f.upload_time)
    out["yanked"] = f.yanked if f.yanked != "" else True
    out["core-metadata"] = dict(f.core_metadata) if f.core_metadata is not None else False
    return out


def project_page(page: ProjectPage, media_type: str) -> bytes:
    """One project's page (PEP 503 HTML or PEP 691 JSON)."""
    versions = sorted_versions([*page.versions, *(f.version for f in page.files)])
    if media_type == JSON_V1:
        return _json(
            {
                "meta": {"api-version": API_VERSION},
                "name": canonicalize_name(page.name),
                "versions": versions,
                "files": [_file_json(f) for f in page.files],
            }
        )
    return _html(f"Links for {page.name}", (_anchor(f) for f in page.files))


def project_list(names: Iterable[str], media_type: str) -> bytes:
    """The index of projects; links are relative (``{normalised}/``)."""
    ordered = sorted(set(names), key=canonicalize_name)
    if media_type == JSON_V1:
        return _json(
            {"meta": {"api-version": API_VERSION}, "projects": [{"name": n} for n in ordered]}
        )
    links = (
        f'<a href="{escape(canonicalize_name(n), quote=True)}/">{escape(n)}</a><br>'
        for n in ordered
    )
    return _html("Simple index", links)
