"""Answering a download: conditional requests, ranges, checksums, streaming.

A full download of a blob on the filesystem is handed to the server as a
path (``FileResponse``: ASGI pathsend where the server offers it), so the
bytes never pass through Python; ranges and other backends stream in
chunks. Nothing is sent before the blob is known to exist, so a missing or
unreachable blob is a clean 503, never a truncated 200.

Every download is an attachment and goes out with its stored type only when
that type is inert (headers.py): stored bytes never run on the UI's origin.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from urllib.parse import quote

from fastapi import Request, Response
from fastapi.responses import FileResponse, RedirectResponse, StreamingResponse

from orchard.db.models import Artifact
from orchard.errors import RangeNotSatisfiable, StorageError
from orchard.headers import served_type
from orchard.metrics import BYTES_OUT
from orchard.settings import Settings
from orchard.storage.base import ArtifactStore

_RANGE = re.compile(r"bytes=([0-9]*)-([0-9]*)")
# More digits than any size (and than ``int`` takes: 4,300): read as "beyond the end".
_MAX_DIGITS = 18
_BEYOND = 10**_MAX_DIGITS


def _position(digits: str) -> int:
    digits = digits.lstrip("0") or "0"
    return _BEYOND if len(digits) > _MAX_DIGITS else int(digits)


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The single byte range a Range header asks for, as (start, end)
    inclusive; None for a full response (no header, several ranges, or a
    unit we don't know, which RFC 9110 lets a server ignore)."""
    if not header:
        return None
    match = _RANGE.fullmatch(header.strip())
    if match is None:
        return None
    first, last = match.groups()
    if first == "" and last == "":
        return None
    unsatisfiable = RangeNotSatisfiable(f"range {_shown(header)} is not satisfiable", size)
    if first == "":  # suffix: the last N bytes
        n = _position(last)
        if n == 0 or size == 0:
            raise unsatisfiable
        return max(0, size - n), size - 1
    start = _position(first)
    end = size - 1 if last == "" else min(_position(last), size - 1)
    if start >= size or (last != "" and _position(last) < start):
        raise unsatisfiable
    return start, end


def _shown(header: str) -> str:
    """The header as an error message quotes it (not 5,000 digits of it)."""
    return repr(header if len(header) <= 80 else header[:77] + "...")


def _plain(c: str) -> str:
    if c > "~":
        return "?"
    return c if c >= " " and c not in '"\\' else "_"


def content_disposition(filename: str) -> str:
    """``attachment`` with the name (RFC 6266): a plain ASCII fallback and
    the exact name in RFC 5987 form."""
    ascii_name = "".join(_plain(c) for c in filename)
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"


# An answer that needed a credential (every file of a private project does) is
# made private by headers.secure, from the scope authentication marks.
PUBLIC = "public, max-age=31536000, immutable"


def artifact_headers(artifact: Artifact, filename: str | None) -> dict[str, str]:
    """Headers of a download: always an attachment (named ``filename``, else
    the sha256), immutable."""
    headers = {
        "ETag": f'"{artifact.id}"',
        "Accept-Ranges": "bytes",
        "X-Checksum-Sha256": artifact.id,
        "X-Checksum-Sha1": artifact.sha1,
        "X-Checksum-Md5": artifact.md5,
        "Cache-Control": PUBLIC,
        "Content-Disposition": content_disposition(filename or artifact.id),
    }
    for name in ("X-Checksum-Sha1", "X-Checksum-Md5"):
        if not headers[name]:  # not computed yet (a proxied file): no header
            del headers[name]
    return headers


def _etag_matches(header: str | None, sha256: str) -> bool:
    if not header:
        return False
    tags = [t.strip().removeprefix("W/").strip('"') for t in header.split(",")]
    return "*" in tags or sha256 in tags


def _if_range_holds(header: str, sha256: str) -> bool:
    """If-Range compares strongly (RFC 9110 13.1.5): only the current strong
    ETag keeps the Range; a weak tag, ``*``, another tag or a date (the ETag
    is our validator) means "send the whole file", which is always correct."""
    return header.strip() == f'"{sha256}"'


async def _counted(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    async for chunk in chunks:
        BYTES_OUT.inc(len(chunk))
        yield chunk


def memory_response(
    request: Request,
    artifact: Artifact,
    body: bytes,
    filename: str | None = None,
) -> Response:
    """A full answer with ``body``, the artifact's bytes, already in memory
    (a small file just fetched and verified); conditional as usual."""
    headers = artifact_headers(artifact, filename)
    if _etag_matches(request.headers.get("if-none-match"), artifact.id):
        return Response(status_code=304, headers=headers)
    BYTES_OUT.inc(len(body))
    return Response(body, headers=headers, media_type=served_type(artifact.content_type))


async def artifact_response(
    request: Request,
    artifact: Artifact,
    storage: ArtifactStore,
    settings: Settings,
    filename: str | None = None,
) -> Response:
    """The artifact's bytes as a download (see ``artifact_headers``)."""
    headers = artifact_headers(artifact, filename)
    if _etag_matches(request.headers.get("if-none-match"), artifact.id):
        return Response(status_code=304, headers=headers)
    if settings.s3_presigned_redirect:
        url = await storage.presigned_url(
            artifact.id, filename or artifact.id, settings.s3_presigned_ttl
        )
        if url:
            return RedirectResponse(url, status_code=307, headers={"ETag": headers["ETag"]})
    if not await storage.exists(artifact.id):
        raise StorageError(f"artifact {artifact.id} is missing from storage")

    size = artifact.size
    if_range = request.headers.get("if-range")
    wanted = request.headers.get("range")
    if if_range and not _if_range_holds(if_range, artifact.id):
        wanted = None
    byte_range = parse_range(wanted, size)
    media_type = served_type(artifact.content_type)

    if request.method == "HEAD":
        if byte_range:
            start, end = byte_range
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
            headers["Content-Length"] = str(end - start + 1)
            return Response(status_code=206, headers=headers, media_type=media_type)
        headers["Content-Length"] = str(size)
        return Response(status_code=200, headers=headers, media_type=media_type)

    if byte_range is None:
        path = storage.local_path(artifact.id)
        # FileResponse answers Range/If-Range on its own (against the
        # Last-Modified it adds), so it only serves requests without a Range.
        if path is not None and "range" not in request.headers:
            BYTES_OUT.inc(size)
            return FileResponse(path, headers=headers, media_type=media_type, stat_result=None)
        headers["Content-Length"] = str(size)
        return StreamingResponse(
            _counted(storage.open(artifact.id)), headers=headers, media_type=media_type
        )
    start, end = byte_range
    headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    headers["Content-Length"] = str(end - start + 1)
    return StreamingResponse(
        _counted(storage.open(artifact.id, start, end)),
        status_code=206,
        headers=headers,
        media_type=media_type,
    )
