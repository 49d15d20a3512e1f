"""The HTTP answer for a file fetched once from an upstream
(``upstream/files.py``), the same for every format: from storage when it
is stored, from memory when the whole verified body is in, or streamed to
the client that started the fetch (the last chunk after verification)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Request, Response
from fastapi.responses import StreamingResponse

from orchard.api.downloads import content_disposition, memory_response
from orchard.core.artifacts import artifact_columns
from orchard.db.models import Artifact
from orchard.headers import served_type
from orchard.upstream.context import UpstreamContext
from orchard.upstream.files import Inspect, Wanted, fetch_once
from orchard.upstream.stored import Placement

Respond = Callable[[Artifact], Awaitable[Response]]


async def serve_upstream_file(
    ctx: UpstreamContext,
    request: Request,
    wanted: Wanted,
    place: Placement,
    respond: Respond,
    inspect: Inspect | None = None,
) -> Response:
    """Serve ``wanted`` from the cache, or fetch it once, store and serve it."""
    stream = request.method == "GET" and "range" not in request.headers
    got = await fetch_once(ctx, wanted, place, stream=stream, inspect=inspect)
    if isinstance(got, Artifact):
        return await respond(got)
    transfer = got
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
