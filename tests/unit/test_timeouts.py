"""Connection limits and timeouts of the server (issue 15, point 3), without sockets.

The real server under 1,000 slow clients is in tests/integration/test_slow_clients.py.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

import pytest
from fastapi import FastAPI, File, Request, UploadFile
from fastapi.responses import StreamingResponse
from starlette.types import Message

from orchard import server
from orchard.api import errors
from orchard.cli import main as cli
from orchard.settings import Settings
from orchard.timeouts import BodyTimeoutMiddleware

TIMEOUT = 0.2


def make_app(events: list[str]) -> FastAPI:
    app = FastAPI()
    errors.install(app)

    @app.put("/upload")
    async def upload(request: Request) -> dict[str, int]:
        size = 0
        try:
            async for chunk in request.stream():
                size += len(chunk)
        finally:
            events.append("handler unwound")  # where staging drops its partial file
        return {"size": size}

    @app.post("/form")
    async def form(content: Annotated[UploadFile, File()]) -> dict[str, int]:
        return {"size": len(await content.read())}

    @app.get("/download")
    async def download() -> StreamingResponse:
        async def slowly() -> AsyncIterator[bytes]:
            for _ in range(5):  # longer than the body timeout in all
                await asyncio.sleep(TIMEOUT / 2)
                yield b"x" * 10

        return StreamingResponse(slowly())

    app.add_middleware(BodyTimeoutMiddleware, timeout=TIMEOUT)
    return app


async def call(
    app: FastAPI, method: str, path: str, body: list[Message], content_type: bytes = b""
) -> list[Message]:
    """One request; after ``body``, ``receive`` waits as for a client that went quiet."""
    pending = list(body)
    sent: list[Message] = []

    async def receive() -> Message:
        if pending:
            return pending.pop(0)
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        sent.append(message)

    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(b"host", b"testserver")]
        + ([(b"content-type", content_type)] if content_type else []),
        "scheme": "http",
        "server": ("testserver", 80),
        "client": ("127.0.0.1", 1234),
        "root_path": "",
    }
    await asyncio.wait_for(app(scope, receive, send), 5)
    return sent


async def test_a_stalled_body_is_answered_408_and_the_handler_unwinds(
    caplog: pytest.LogCaptureFixture,
) -> None:
    events: list[str] = []
    first = {"type": "http.request", "body": b"a" * 100, "more_body": True}
    sent = await call(make_app(events), "PUT", "/upload", [first])
    start, body = sent[0], b"".join(m.get("body", b"") for m in sent[1:])
    assert start["status"] == 408
    assert (b"connection", b"close") in start["headers"]
    assert json.loads(body)["error"]["code"] == "http_error"
    assert events == ["handler unwound"]
    stalled = [r for r in caplog.records if "request body stalled" in r.getMessage()]
    assert len(stalled) == 1 and stalled[0].exc_info is None
    assert "after 100 bytes" in stalled[0].getMessage()


async def test_a_stalled_form_upload_is_408_too() -> None:
    """twine's uploads are forms: FastAPI parses them before the handler runs
    and passes an HTTPException through (any other error would be a 400)."""
    head = (
        b"--b\r\nContent-Disposition: form-data; name=content; filename=a.whl\r\n"
        b"Content-Type: application/octet-stream\r\n\r\n" + b"x" * 100
    )
    first = {"type": "http.request", "body": head, "more_body": True}
    app = make_app([])
    sent = await call(app, "POST", "/form", [first], b"multipart/form-data; boundary=b")
    assert sent[0]["status"] == 408


async def test_a_body_that_keeps_coming_is_not_cut(caplog: pytest.LogCaptureFixture) -> None:
    events: list[str] = []
    parts: list[Message] = [
        {"type": "http.request", "body": b"a" * 10, "more_body": True} for _ in range(3)
    ]
    parts.append({"type": "http.request", "body": b"", "more_body": False})
    sent = await call(make_app(events), "PUT", "/upload", parts)
    assert sent[0]["status"] == 200
    assert json.loads(sent[1]["body"]) == {"size": 30}


async def test_a_long_download_is_not_timed(caplog: pytest.LogCaptureFixture) -> None:
    """Once the (empty) request body is read, ``receive`` only waits for the
    client to leave while the response streams: that wait is never a 408."""
    request = [{"type": "http.request", "body": b"", "more_body": False}]
    sent = await call(make_app([]), "GET", "/download", request)
    assert sent[0]["status"] == 200
    assert b"".join(m.get("body", b"") for m in sent[1:]) == b"x" * 50
    assert not [r for r in caplog.records if "stalled" in r.getMessage()]


def test_limits_become_granian_settings() -> None:
    http1 = server.Limits(header_timeout=10, keepalive_timeout=30).http1()
    assert http1.header_read_timeout == 10_000
    assert http1.keep_alive
    assert http1.max_buffer_size == server.HTTP1_BUFFER_SIZE
    # granian's HTTP/1 has one timer for both: the shorter wins.
    assert (
        server.Limits(header_timeout=10, keepalive_timeout=2.5).http1().header_read_timeout == 2500
    )
    assert server.Limits(header_timeout=600).http1().header_read_timeout == 30_000
    assert server.Limits(header_timeout=600, keepalive_timeout=600).http1().header_read_timeout == (
        server.MAX_HEADER_TIMEOUT_MS
    )


def test_serve_passes_the_settings_to_the_server_process(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    settings = Settings(
        data_dir=tmp_path,
        server_backlog=4096,
        server_backpressure=500,
        server_header_timeout=7.5,
        server_keepalive_timeout=20,
    )
    monkeypatch.setattr(cli.ops, "load_settings", lambda: settings)
    monkeypatch.setattr(cli.ops, "migrate", lambda *args: None)
    argv: list[str] = []

    def execv(path: str, args: list[str]) -> None:
        argv.extend(args)

    monkeypatch.setattr(cli.os, "execv", execv)
    cli.serve(host="127.0.0.1", port=1, workers=1, dev=False)
    served: dict[str, Any] = {}
    monkeypatch.setattr(server, "serve", lambda *args: served.update(args=args) or 0)
    assert server.main(argv[argv.index("orchard.server") + 1 :]) == 0
    limits = served["args"][-1]
    assert limits == server.Limits(
        backlog=4096, backpressure=500, header_timeout=7.5, keepalive_timeout=20
    )
