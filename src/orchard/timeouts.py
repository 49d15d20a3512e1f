"""A request body that stalls ends its request: 408, and the staged bytes go.

granian (hyper) bounds how long a client may take to send a request's
headers, but not its body: an upload that stops sending would otherwise
hold its request, its staging file and its connection for ever. Each read
of the body waits at most ``ORCHARD_SERVER_BODY_TIMEOUT`` seconds; past
that, the read raises an ``HTTPException(408)``. It unwinds the handler
like any error while a body is read (staging removes its partial file on
the way out), and the application's HTTP error handler answers 408 in the
protocol's own error form. One log line says so; there is no traceback.

Only reads of the body are timed: once the last body message has arrived,
``receive`` only waits for the client to go away (while a response
streams) and is passed through untouched.
"""

from __future__ import annotations

import logging

import anyio
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("orchard.timeouts")


class BodyTimeoutMiddleware:
    def __init__(self, app: ASGIApp, timeout: float) -> None:
        self.app = app
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        complete = False
        received = 0

        async def timed_receive() -> Message:
            nonlocal complete, received
            if complete:
                return await receive()
            with anyio.move_on_after(self.timeout) as scope_:
                message = await receive()
            if scope_.cancelled_caught:
                complete = True  # the next read only waits for the disconnect
                log.warning(
                    "request body stalled for %s s after %d bytes; answered 408",
                    self.timeout,
                    received,
                    extra={
                        "event": "body_timeout",
                        "method": scope["method"],
                        "path": scope["path"],
                        "received": received,
                    },
                )
                raise HTTPException(
                    408,
                    f"the request body sent nothing for {self.timeout:g} seconds",
                    headers={"Connection": "close"},
                )
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                complete = not message.get("more_body", False)
            else:  # http.disconnect
                complete = True
            return message

        await self.app(scope, timed_receive, send)
