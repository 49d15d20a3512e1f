"""A fake upstream of any format over real HTTP on 127.0.0.1: a table of
paths → bodies, with ETag / If-None-Match (304), an answer forced for every
request (``status``, e.g. 503), ``stop()`` (connection refused) and a hit
counter per path. Used by the tests of the shared upstream services."""

from __future__ import annotations

import hashlib
import threading
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class FakeUpstream:
    bodies: dict[str, bytes] = field(default_factory=dict)
    status: int | None = None
    hits: Counter[str] = field(default_factory=Counter)
    conditional: Counter[str] = field(default_factory=Counter)  # requests with If-None-Match
    url: str = ""  # kept after stop(): the refused address
    _server: ThreadingHTTPServer | None = None

    def start(self) -> FakeUpstream:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                path = self.path
                fake.hits[path] += 1
                if fake.status is not None:
                    self._send(fake.status, b"forced", {})
                    return
                body = fake.bodies.get(path)
                if body is None:
                    self._send(404, b"not found", {})
                    return
                etag = f'"{hashlib.sha256(body).hexdigest()[:16]}"'
                if self.headers.get("If-None-Match"):
                    fake.conditional[path] += 1
                    if self.headers["If-None-Match"] == etag:
                        self._send(304, b"", {"ETag": etag})
                        return
                self._send(200, body, {"ETag": etag, "Content-Type": "application/octet-stream"})

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
