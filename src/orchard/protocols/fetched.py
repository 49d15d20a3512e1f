"""The HTTP answer for a proxied file (``upstream/files.Found``), the same
for every format: from storage when it is stored, from memory when the
whole verified body is in, or streamed to the client that started the
fetch (its last chunk once the body is verified)."""

from __future__ import annotations

from fastapi import Request, Response
from fastapi.responses import StreamingResponse

from orchard.api.downloads import artifact_response, content_disposition, memory_response
from orchard.core.artifacts import artifact_columns
from orchard.db.models import Artifact
from orchard.headers import served_type
from orchard.upstream.context import UpstreamContext
from orchard.upstream.files import Found


async def answer(request: Request, ctx: UpstreamContext, found: Found) -> Response:
    if isinstance(found.got, Artifact):
        return await artifact_response(
            request, found.got, ctx.storage, ctx.settings, found.filename
        )
    transfer, place = found.got, found.got.place
    verified = transfer.whole
    if verified is not None:
        artifact = Artifact(**artifact_columns(verified, place.content_type))
        response = memory_response(request, artifact, transfer.take_body(), place.filename)
        response.headers["X-Orchard-Cache"] = "miss"
        return response
    headers = {
        "X-Orchard-Cache": "miss",
        "Content-Disposition": content_disposition(place.filename),
    }
    if transfer.content_length is not None:
        headers["Content-Length"] = str(transfer.content_length)
    media_type = served_type(place.content_type)  # never an active type (headers.py)
    return StreamingResponse(transfer.stream(), media_type=media_type, headers=headers)


def streams(request: Request) -> bool:
    """Whether a proxied file may be streamed to this request as it arrives
    (a whole GET; HEAD and Range requests wait for the stored file)."""
    return request.method == "GET" and "range" not in request.headers
