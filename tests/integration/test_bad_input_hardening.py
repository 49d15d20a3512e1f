"""Bad input is a 4xx, never a 500 (issue 15, point 9), and an upload's
answer tells nothing about bytes stored for other projects (point 10).

Point 9: offsets of 5,000 digits, archive members without a name, a body
that ends before its Content-Length or has a malformed chunk size, and an
audit cursor past the id column's range. Point 10: uploading bytes that only
a private project holds answers exactly as uploading new bytes does, and the
artifact API shows ``ref_count`` to unrestricted administrators only.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import socket
import struct
import tarfile
import time
import zipfile
from collections.abc import Callable

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import LiveServer
from tests.pypi_support import make_sdist, make_wheel, upload_form
from tests.support import add_member, bearer, make_project, make_token, make_user

API = "/api/v1"
HUGE = "9" * 5000


def assert_4xx(response: httpx.Response, status: int, code: str | None = None) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    if code is not None:
        assert error["code"] == code, error


# --- point 9: numbers, archive members, the audit cursor ------------------------------------


async def test_offsets_of_5000_digits_are_400(client: httpx.AsyncClient) -> None:
    assert (await client.post(f"{API}/projects", json={"name": "p"})).status_code == 201
    r = await client.post(
        f"{API}/uploads",
        json={"project": "p", "package": "pkg", "version": "1.0", "filename": "f.bin"},
    )
    assert r.status_code == 201, r.text
    url = f"{API}/uploads/{r.json()['id']}"
    for headers in (
        {"Upload-Offset": HUGE},
        {"Content-Range": f"bytes {HUGE}-{HUGE}/{HUGE}"},
        {"Content-Range": f"bytes 0-{HUGE}/*"},
        {"Upload-Offset": b"\xb2"},  # "²" in Latin-1: str.isdigit() says yes
        {"Upload-Offset": "-1"},
    ):
        assert_4xx(await client.patch(url, content=b"abc", headers=headers), 400, "invalid_input")
    # Nothing moved; a good chunk still goes.
    ok = await client.patch(url, content=b"abc", headers={"Upload-Offset": "0"})
    assert ok.status_code == 200, ok.text
    assert ok.json()["offset"] == 3


def _wheel_with_member(member: str) -> tuple[str, bytes]:
    filename, _, raw = make_wheel("odd-pkg", "1.0")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(member, b"")
        zf.writestr("odd_pkg-1.0.dist-info/METADATA", raw)
    return filename, buf.getvalue()


def _sdist_with_member(member: str) -> tuple[str, bytes]:
    filename, _, raw = make_sdist("odd-pkg", "1.0")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in ((member, b""), ("odd_pkg-1.0/PKG-INFO", raw)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return filename, buf.getvalue()


@pytest.mark.parametrize(
    "build",
    [
        lambda: _wheel_with_member("."),
        lambda: _wheel_with_member("./"),
        lambda: _sdist_with_member(""),
        lambda: _sdist_with_member("."),
    ],
    ids=["wheel-dot", "wheel-dot-slash", "sdist-empty", "sdist-dot"],
)
async def test_archive_members_without_a_name_are_400(
    client: httpx.AsyncClient, build: Callable[[], tuple[str, bytes]]
) -> None:
    assert (await client.post(f"{API}/projects", json={"name": "team"})).status_code == 201
    filename, content = build()
    r = await client.post("/pypi/team/", **upload_form(filename, content, "odd-pkg", "1.0"))
    assert r.status_code == 400, r.text
    assert "no name" in r.text or "not a valid archive" in r.text
    # Nothing was stored.
    assert (await client.get(f"{API}/project/team/packages")).json() == []


async def test_audit_cursor_out_of_range_is_422_and_health_stays_up(
    client: httpx.AsyncClient,
) -> None:
    for before in ("9223372036854775806", str(2**31), HUGE):
        r = await client.get(f"{API}/audit", params={"before": before})
        assert_4xx(r, 422, "validation_error")
    ok = await client.get(f"{API}/audit", params={"before": str(2**31 - 1)})
    assert ok.status_code == 200, ok.text
    assert ok.json()  # the bootstrap and this test's token are there
    assert (await client.get("/health")).status_code == 200


# --- point 9: bodies that end early, on a real server -----------------------------------------


def _raw_request(port: int, head: str, body: bytes, *, half_close: bool) -> bytes:
    """Send a request by hand; half-close (or close) and read the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head.encode() + body)
        if not half_close:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return b""  # closed at once: the server answers no one
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        return answer


def _log_events(server: LiveServer) -> list[dict[str, object]]:
    events = []
    for line in server.log.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            events.append(json.loads(line))
    return events


async def test_bodies_that_end_early_are_400_with_one_log_line(
    live_server: LiveServer,
) -> None:
    port = int(live_server.url.rsplit(":", 1)[1])
    auth = f"Authorization: Bearer {live_server.token}\r\n"
    async with httpx.AsyncClient(base_url=live_server.url, headers=live_server.auth) as http:
        assert (await http.post(f"{API}/projects", json={"name": "p"})).status_code == 201
        r = await http.post(
            f"{API}/uploads",
            json={"project": "p", "package": "pkg", "version": "1.0", "filename": "r.bin"},
        )
        upload_url = f"{API}/uploads/{r.json()['id']}"
    form = upload_form(*make_wheel("demo", "1.0")[:2], "demo", "1.0")
    multipart = httpx.Request("POST", "/", data=form["data"], files=form["files"])
    multipart_head = f"Content-Type: {multipart.headers['content-type']}\r\n"
    put = f"PUT {API}/project/p/packages/pkg/versions/1.0/files/%s HTTP/1.1\r\nHost: t\r\n{auth}"
    cases = [
        # Content-Length 100, 10 bytes sent, half-close
        (put % "a.bin" + "Content-Length: 100\r\n\r\n", b"0123456789", True),
        (
            f"PATCH {upload_url} HTTP/1.1\r\nHost: t\r\n{auth}Upload-Offset: 0\r\n"
            "Content-Length: 100\r\n\r\n",
            b"0123456789",
            True,
        ),
        (
            f"POST /pypi/p/ HTTP/1.1\r\nHost: t\r\n{auth}{multipart_head}"
            "Content-Length: 100000\r\n\r\n",
            multipart.read()[:500],
            True,
        ),
        # a malformed chunk size, and a chunk cut short
        (put % "b.bin" + "Transfer-Encoding: chunked\r\n\r\n", b"zz\r\nabc\r\n0\r\n\r\n", True),
        (put % "c.bin" + "Transfer-Encoding: chunked\r\n\r\n", b"5\r\nabc", True),
        # an aborted upload: the connection is reset, nobody hears the answer
        (put % "d.bin" + "Content-Length: 100\r\n\r\n", b"0123456789", False),
    ]
    for head, body, half_close in cases:
        answer = await asyncio.to_thread(_raw_request, port, head, body, half_close=half_close)
        if half_close:
            status_line = answer.split(b"\r\n", 1)[0]
            assert status_line == b"HTTP/1.1 400 Bad Request", (head, answer[:300])
            assert b'"code":"incomplete_body"' in answer, answer[-300:]

    # One line per request, and no traceback.
    deadline = time.monotonic() + 10
    while True:
        lines = [e for e in _log_events(live_server) if e.get("event") == "incomplete_body"]
        if len(lines) >= len(cases) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    text = live_server.log.read_text(errors="replace")
    assert "Traceback" not in text, text[-3000:]
    assert len(lines) == len(cases), lines
    # Nothing of the broken bodies was kept.
    async with httpx.AsyncClient(base_url=live_server.url, headers=live_server.auth) as http:
        assert (await http.get(f"{upload_url}")).json()["offset"] == 0
        listed = await http.get(f"{API}/project/p/packages")
        assert listed.json() == []


# --- point 10: dedup stays internal -----------------------------------------------------------


async def test_upload_answer_tells_nothing_of_private_projects(
    app: FastAPI, client: httpx.AsyncClient, anon_client: httpx.AsyncClient
) -> None:
    secret = os.urandom(4096)
    fresh = os.urandom(4096)
    sha = hashlib.sha256(secret).hexdigest()
    await make_project(app, "hidden", public=False)
    await make_project(app, "mine", public=False)
    await make_user(app, "writer")
    await add_member(app, "mine", "writer", "write")
    writer = bearer(await make_token(app, "writer"))
    stored = await client.put(
        f"{API}/project/hidden/packages/s/versions/1/files/s.bin", content=secret
    )
    assert stored.status_code == 201, stored.text

    async def put(version: str, data: bytes) -> dict[str, object]:
        r = await anon_client.put(
            f"{API}/project/mine/packages/m/versions/{version}/files/m.bin",
            content=data,
            headers=writer,
        )
        assert r.status_code == 201, r.text
        return dict(r.json())

    async def post(version: str, data: bytes) -> dict[str, object]:
        r = await anon_client.post(
            f"{API}/project/mine/packages/m/upload",
            data={"version": version},
            files={"file": ("m.bin", data)},
            headers=writer,
        )
        assert r.status_code == 201, r.text
        return dict(r.json())

    async def resumable(version: str, data: bytes) -> dict[str, object]:
        target = {"project": "mine", "package": "m", "version": version, "filename": "m.bin"}
        r = await anon_client.post(f"{API}/uploads", json=target, headers=writer)
        assert r.status_code == 201, r.text
        url = f"{API}/uploads/{r.json()['id']}"
        r = await anon_client.patch(url, content=data, headers={**writer, "Upload-Offset": "0"})
        assert r.status_code == 200, r.text
        r = await anon_client.post(
            f"{url}/complete", json={"sha256": hashlib.sha256(data).hexdigest()}, headers=writer
        )
        assert r.status_code == 201, r.text
        return dict(r.json())

    def unrevealing(answer: dict[str, object]) -> dict[str, object]:
        # What may differ between the two answers: the bytes themselves.
        return {
            k: v
            for k, v in answer.items()
            if k not in ("sha256", "md5", "sha1", "sha512", "url", "version")
        }

    for n, send in enumerate((put, post, resumable)):
        known = await send(f"{n}.0", secret)
        new = await send(f"{n}.1", fresh if n == 0 else os.urandom(4096))
        assert known.keys() == new.keys()
        assert unrevealing(known) == unrevealing(new)
        assert "deduplicated" not in known
        assert "ref_count" not in known
        assert known["created"] is True

    # The artifact API: the writer sees its own references and no count.
    seen = await anon_client.get(f"{API}/artifacts/{sha}", headers=writer)
    assert seen.status_code == 200, seen.text
    assert seen.json()["ref_count"] is None
    assert {ref["project"] for ref in seen.json()["references"]} == {"mine"}
    # A restricted administrator token sees no count either; a full one does.
    restricted = bearer(await make_token(app, "admin", projects=["mine"]))
    seen = await anon_client.get(f"{API}/artifacts/{sha}", headers=restricted)
    assert seen.status_code == 200, seen.text
    assert seen.json()["ref_count"] is None
    full = await client.get(f"{API}/artifacts/{sha}")
    assert full.json()["ref_count"] == 4
    assert {ref["project"] for ref in full.json()["references"]} == {"hidden", "mine"}
