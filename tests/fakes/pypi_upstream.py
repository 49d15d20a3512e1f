"""A fake upstream simple index over real HTTP on 127.0.0.1.

Pages at ``/simple/{name}/`` (PEP 691 JSON or PEP 503 HTML, by the Accept
header or forced with ``fmt``), files at ``/files/{filename}`` and PEP 658
sidecars at ``/files/{filename}.metadata``. Switches: ``delay`` (slow),
``status`` (answer every request with it, e.g. 503), ``corrupt`` (file names
whose bytes are altered: hash mismatch), ``stop()``/``start()`` (down:
connection refused, then up again on the same port), ``require_auth``
(answer 401 without that Authorization header). ETag / If-None-Match
support, and counters and last headers per path.
"""

from __future__ import annotations

import contextlib
import hashlib
import html
import json
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class FakeFile:
    filename: str
    content: bytes
    metadata: bytes | None = None  # served as a sidecar and advertised when set
    requires_python: str | None = None
    yanked: bool | str = False

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


@dataclass
class FakeIndex:
    """The fake's state; the handler reads it on every request."""

    packages: dict[str, list[FakeFile]] = field(default_factory=dict)
    fmt: str | None = None  # "json" | "html" | None = negotiate
    delay: float = 0.0
    status: int | None = None
    corrupt: set[str] = field(default_factory=set)
    require_auth: str | None = None
    hits: Counter[str] = field(default_factory=Counter)
    headers: dict[str, dict[str, str]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, name: str, f: FakeFile) -> FakeFile:
        self.packages.setdefault(name, []).append(f)
        return f

    def page(self, name: str, as_json: bool) -> bytes:
        files = self.packages[name]
        if as_json:
            doc: dict[str, Any] = {"meta": {"api-version": "1.1"}, "name": name, "versions": []}
            doc["files"] = [self._json_file(f) for f in files]
            return json.dumps(doc).encode()
        anchors = "".join(self._anchor(f) for f in files)
        return f"<!DOCTYPE html><html><body>{anchors}</body></html>".encode()

    @staticmethod
    def _json_file(f: FakeFile) -> dict[str, Any]:
        out: dict[str, Any] = {"filename": f.filename, "url": f"../../files/{f.filename}",
                               "hashes": {"sha256": f.sha256}, "size": len(f.content)}
        if f.requires_python:
            out["requires-python"] = f.requires_python
        if f.yanked:
            out["yanked"] = f.yanked
        if f.metadata is not None:
            out["core-metadata"] = {"sha256": hashlib.sha256(f.metadata).hexdigest()}
        return out

    @staticmethod
    def _anchor(f: FakeFile) -> str:
        attrs = f'href="/files/{f.filename}#sha256={f.sha256}"'
        if f.requires_python:
            attrs += f' data-requires-python="{html.escape(f.requires_python, quote=True)}"'
        if f.yanked:
            reason = f.yanked if isinstance(f.yanked, str) else ""
            attrs += f' data-yanked="{html.escape(reason, quote=True)}"'
        if f.metadata is not None:
            digest = hashlib.sha256(f.metadata).hexdigest()
            attrs += f' data-core-metadata="sha256={digest}"'
            attrs += f' data-dist-info-metadata="sha256={digest}"'
        return f"<a {attrs}>{f.filename}</a>\n"

    def find(self, filename: str) -> FakeFile | None:
        for files in self.packages.values():
            for f in files:
                if f.filename == filename:
                    return f
        return None


class _Handler(BaseHTTPRequestHandler):
    index: FakeIndex
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return

    def _send(self, status: int, body: bytes, content_type: str = "text/plain",
              extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        idx = self.index
        path = self.path.split("?")[0]
        with idx.lock:
            idx.hits[path] += 1
            idx.headers[path] = {k.lower(): v for k, v in self.headers.items()}
        if idx.delay:
            time.sleep(idx.delay)
        if idx.require_auth and self.headers.get("Authorization") != idx.require_auth:
            self._send(401, b"unauthorized", extra={"WWW-Authenticate": 'Basic realm="fake"'})
            return
        if idx.status:
            self._send(idx.status, b"fake failure")
            return
        if path == "/simple/":
            links = "".join(f'<a href="{n}/">{n}</a>' for n in sorted(idx.packages))
            self._send(200, f"<html><body>{links}</body></html>".encode(), "text/html")
        elif path.startswith("/simple/") and path.endswith("/"):
            self._page(path.removeprefix("/simple/").rstrip("/"))
        elif path.startswith("/files/"):
            self._file(path.removeprefix("/files/"))
        else:
            self._send(404, b"not found")

    def _page(self, name: str) -> None:
        if name not in self.index.packages:
            self._send(404, b"no such project")
            return
        accept = self.headers.get("Accept", "")
        as_json = self.index.fmt == "json" or (self.index.fmt is None and "json" in accept)
        body = self.index.page(name, as_json)
        etag = f'"{hashlib.sha256(body).hexdigest()[:16]}"'
        if self.headers.get("If-None-Match") == etag:
            self._send(304, b"", extra={"ETag": etag})
            return
        ctype = "application/vnd.pypi.simple.v1+json" if as_json else "text/html; charset=utf-8"
        self._send(200, body, ctype, {"ETag": etag})

    def _file(self, filename: str) -> None:
        sidecar = filename.endswith(".metadata")
        f = self.index.find(filename.removesuffix(".metadata"))
        if f is None or (sidecar and f.metadata is None):
            self._send(404, b"no such file")
            return
        body = f.metadata if sidecar and f.metadata is not None else f.content
        if f.filename in self.index.corrupt and not sidecar:
            body = body[:-1] + bytes([body[-1] ^ 0xFF])
        self._send(200, body, "application/octet-stream")


class _Server(ThreadingHTTPServer):
    """Remembers open connections so that ``stop`` really takes the fake down
    (keep-alive connections would otherwise go on being served)."""

    daemon_threads = True

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.open: set[socket.socket] = set()

    def process_request(self, request: Any, client_address: Any) -> None:
        self.open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        self.open.discard(request)
        super().shutdown_request(request)

    def close_all(self) -> None:
        for sock in list(self.open):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()
        self.open.clear()


class FakePyPI:
    """The server; ``url`` is the simple index root (``…/simple``)."""

    def __init__(self, index: FakeIndex | None = None) -> None:
        self.index = index or FakeIndex()
        self.port = 0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/simple"

    def start(self) -> FakePyPI:
        handler = type("Handler", (_Handler,), {"index": self.index})
        server = _Server(("127.0.0.1", self.port), handler)
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server.close_all()
            self._server = None

    def hits(self, path: str) -> int:
        return self.index.hits[path]

    def reset(self) -> None:
        with self.index.lock:
            self.index.hits.clear()
            self.index.headers.clear()
