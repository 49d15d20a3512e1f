"""Files sent by the web server in front: ``X-Accel-Redirect``.

An ASGI server copies a file through user space; nginx hands it to the
kernel (``sendfile``), at several times less CPU per byte. With
``ORCHARD_ACCEL_REDIRECT`` set to a path prefix (``/_orchard/blobs/``) and
blobs on the filesystem, a request that came through the front web server
(it says so with ``X-Orchard-Accel: on``, a header the front sets and
overwrites) is answered, where Orchard would send a blob by path, with its
usual status and headers, an empty body and ``X-Accel-Redirect: <prefix><the
blob's key>``; nginx then sends the file from an ``internal`` location that
aliases the blobs folder (docs/operations.md). Orchard still decides
everything else: access, 304s, the headers.

Only blobs are handed over, only whole-file answers (status 200) that the
application sends by path (ASGI ``http.response.pathsend``, which granian
offers): a range, a file being fetched from upstream and anything not under
the blobs folder go as usual, and a request that reaches Orchard without
the header (a health check, a client inside the cluster) gets the bytes:
the setting cannot break a client that does not pass through the front.
The header is believed only from a trusted proxy
(``ORCHARD_FORWARDED_ALLOW_IPS``, forwarded.py).

For a marked request, the start of every answer is held until its first
body message (that is when it is known whether a path follows). nginx keeps
only some headers of the answer (docs/nginx/orchard.conf copies the others):
a header added to file answers needs a line there too.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from starlette.types import Message, Scope, Send

FRONT_HEADER = b"x-orchard-accel"
FRONT_ON = frozenset({b"on", b"1", b"yes", b"true"})
PATHSEND = "http.response.pathsend"
BLOB_KEY = re.compile(r"sha256/[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f]{64}")


class AccelRedirect:
    """Turns a blob sent by path into an ``X-Accel-Redirect``."""

    def __init__(self, prefix: str, blobs: Path) -> None:
        self.prefix = prefix
        self.root = os.path.abspath(blobs).rstrip("/") + "/"

    def wanted(self, scope: Scope) -> bool:
        """Whether the front asked for it (the last such header counts)."""
        wanted = False
        for name, value in scope["headers"]:
            if name == FRONT_HEADER:
                wanted = value.strip().lower() in FRONT_ON
        return wanted

    def location(self, path: str) -> str | None:
        """The URI nginx sends ``path`` from; None when it is not a blob."""
        path = os.path.abspath(path)
        if not path.startswith(self.root):
            return None
        key = path[len(self.root) :]
        return self.prefix + key if BLOB_KEY.fullmatch(key) else None

    def wrap(self, send: Send) -> Send:
        """``send`` for one request: the answer's start waits for its body;
        a blob's path replaces both with the redirect."""
        held: Message | None = None

        async def accel_send(message: Message) -> None:
            nonlocal held
            if message["type"] == "http.response.start":
                held = message
                return
            start, held = held, None
            if start is not None:
                whole = message["type"] == PATHSEND and start["status"] == 200
                location = self.location(message["path"]) if whole else None
                if location is not None:
                    headers = [
                        (k, v)
                        for k, v in start.get("headers", ())
                        if k.lower() not in (b"content-length", b"x-accel-redirect")
                    ]
                    headers += [(b"x-accel-redirect", location.encode()), (b"content-length", b"0")]
                    await send({**start, "headers": headers})
                    await send({"type": "http.response.body", "body": b""})
                    return
                await send(start)
            await send(message)

        return accel_send
