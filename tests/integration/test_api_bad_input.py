"""Bad input gets a clear 4xx in the JSON error shape and changes nothing.

"Nothing" is checked from the outside: storage statistics, projects,
packages, versions, the audit log, and the bytes in storage (blobs and
staging leftovers, on disk or in the bucket) are the same before and after.
The upload limit is lowered to ``MAX`` bytes for this module.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import boto3
import httpx
import pytest

from orchard.app import create_app
from orchard.settings import Settings
from tests.support import bearer, make_token

API = "/api/v1"


MAX = 1000
SEED = b"the one good file\n"
EVIL = b"evil bytes that must never be stored"


@pytest.fixture
def settings(stack_settings: Settings) -> Settings:
    return stack_settings.model_copy(update={"max_upload_size": MAX})


def file_path(project: str, package: str, version: str, filename: str) -> str:
    return f"{API}/project/{project}/packages/{package}/versions/{version}/files/{filename}"


def assert_error(r: httpx.Response, *statuses: int, code: str | None = None) -> None:
    """A 4xx among ``statuses`` with the ``{"error": {"code", "message"}}`` shape."""
    assert r.status_code in statuses, (r.request.method, r.request.url, r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/json"), r.headers
    error = r.json()["error"]
    assert set(error) == {"code", "message"}
    assert isinstance(error["code"], str) and error["code"]
    assert isinstance(error["message"], str) and error["message"]
    if code is not None:
        assert error["code"] == code, error


def storage_listing(settings: Settings) -> list[str]:
    """Every blob, staged file and part the stack's storage holds."""
    found: list[str] = []
    if settings.storage_url is None:  # embedded: the blobs folder in the data dir
        root = settings.data_dir / "blobs"
        found += [str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()]
    else:
        parsed = urlparse(settings.storage_url)
        s3 = boto3.client("s3", endpoint_url=settings.s3_endpoint_url, region_name="us-east-1")
        try:
            pages = s3.get_paginator("list_objects_v2").paginate(Bucket=parsed.netloc)
            found += [obj["Key"] for page in pages for obj in page.get("Contents", [])]
        finally:
            s3.close()
        staging = settings.data_dir / "staging"
        if staging.is_dir():
            found += [f"staging/{p.name}" for p in staging.rglob("*") if p.is_file()]
    return sorted(found)


def blob_names(settings: Settings) -> set[str]:
    return {Path(key).name for key in storage_listing(settings) if "sha256/" in key}


async def snapshot(client: httpx.AsyncClient, settings: Settings) -> dict[str, Any]:
    """What a user (and an operator) can observe of the repository's state."""

    async def get(url: str, **params: Any) -> Any:
        r = await client.get(url, params=params)
        assert r.status_code == 200, (url, r.text)
        return r.json()

    state: dict[str, Any] = {
        "stats": await get(f"{API}/stats/storage"),
        "projects": await get(f"{API}/projects"),
        "audit": await get(f"{API}/audit", limit=1000),
        "storage": storage_listing(settings),
    }
    for project in state["projects"]:
        name = project["name"]
        packages = await get(f"{API}/project/{name}/packages")
        state[f"packages:{name}"] = packages
        for package in packages:
            base = f"{API}/project/{name}/packages/{package['name']}/versions"
            for version in await get(base):
                state[f"version:{name}/{package['name']}"] = await get(
                    f"{base}/{version['version']}"
                )
    return state


async def assert_not_stored(client: httpx.AsyncClient, settings: Settings, data: bytes) -> None:
    sha = hashlib.sha256(data).hexdigest()
    assert_error(await client.get(f"{API}/artifacts/{sha}"), 404, code="not_found")
    assert sha not in blob_names(settings)


@pytest.fixture
async def seeded(client: httpx.AsyncClient, settings: Settings) -> dict[str, Any]:
    """Project ``p`` with ``pkg`` 1.0 ``a.txt``; returns the state snapshot."""
    r = await client.post(f"{API}/projects", json={"name": "p"})
    assert r.status_code == 201, r.text
    r = await client.put(file_path("p", "pkg", "1.0", "a.txt"), content=SEED)
    assert r.status_code == 201, r.text
    state = await snapshot(client, settings)
    assert hashlib.sha256(SEED).hexdigest() in blob_names(settings)
    return state


# Path segments that must never name anything: traversal (percent-encoded so
# that the client does not resolve them itself), separators, control
# characters, hidden names, over-long names.
BAD_SEGMENTS = [
    "%2e%2e",
    "%2E%2E",
    "..",
    ".",
    "a%2F..%2Fb",
    "..%2F..%2Fetc%2Fpasswd",
    "%2e%2e%5C%2e%2e%5Cwindows",
    "a%5Cb",
    "a%00b",
    "%00",
    "a%0Ab",
    "a%0D%0AX-Injected:%201",
    "a%09b",
    "a%7Fb",
    ".hidden",
    "x" * 300,
]


async def test_traversal_and_control_characters_in_upload_targets(
    client: httpx.AsyncClient, settings: Settings, seeded: dict[str, Any]
) -> None:
    good = {"project": "p", "package": "pkg", "version": "2.0", "filename": "b.txt"}
    for position in good:
        for bad in BAD_SEGMENTS:
            if bad in ("..", "."):
                continue  # resolved by any client before sending; encoded forms below
            target = {**good, position: bad}
            r = await client.put(file_path(**target), content=EVIL)
            assert_error(r, 400, 403, 404, 405)
    # A new project under a bad name is refused outright.
    r = await client.put(file_path("%2e%2e", "pkg", "1.0", "x.txt"), content=EVIL)
    assert_error(r, 400, 404)
    assert await snapshot(client, settings) == seeded
    await assert_not_stored(client, settings, EVIL)


def multipart(filename: bytes, data: bytes, version: bytes = b"2.0") -> tuple[bytes, str]:
    """A browser-style form, built by hand so the filename goes out verbatim
    (clients escape quotes, NUL and line breaks in it)."""
    boundary = b"orchard-test-boundary"
    body = (
        b"--" + boundary + b"\r\n"
        b'Content-Disposition: form-data; name="version"\r\n\r\n' + version + b"\r\n"
        b"--" + boundary + b"\r\n"
        b'Content-Disposition: form-data; name="file"; filename="' + filename + b'"\r\n'
        b"Content-Type: application/octet-stream\r\n\r\n" + data + b"\r\n"
        b"--" + boundary + b"--\r\n"
    )
    return body, f"multipart/form-data; boundary={boundary.decode()}"


async def test_traversal_in_multipart_filename(
    client: httpx.AsyncClient, settings: Settings, seeded: dict[str, Any]
) -> None:
    bad_names = [
        b"../../evil.txt",
        b"..\\..\\evil.txt",
        b"/etc/passwd",
        b"sub/evil.txt",
        b".bashrc",
        b"..",
        b".",
        b"",
        b"a\x00b.txt",
        b"a\x7fb.txt",
        b"a\x01b.txt",
        b"a\tb.txt",
        b"x" * 300,
    ]
    for filename in bad_names:
        body, content_type = multipart(filename, EVIL)
        r = await client.post(
            f"{API}/project/p/packages/pkg/upload",
            content=body,
            headers={"content-type": content_type},
        )
        assert_error(r, 400)
    for version in (b"..", b"a/../b", b"1.0\x00", b"x" * 200):
        body, content_type = multipart(b"ok.txt", EVIL, version=version)
        r = await client.post(
            f"{API}/project/p/packages/pkg/upload",
            content=body,
            headers={"content-type": content_type},
        )
        assert_error(r, 400)
    assert await snapshot(client, settings) == seeded
    await assert_not_stored(client, settings, EVIL)


async def test_bad_names_on_read_and_delete_are_4xx(
    client: httpx.AsyncClient, settings: Settings, seeded: dict[str, Any]
) -> None:
    for bad in BAD_SEGMENTS:
        if bad in ("..", "."):
            continue
        for url in (
            f"{API}/project/{bad}",
            f"{API}/project/{bad}/packages",
            f"{API}/project/p/packages/{bad}",
            f"{API}/project/p/packages/{bad}/versions",
            f"{API}/project/p/packages/pkg/versions/{bad}",
            file_path("p", "pkg", "1.0", bad),
            file_path("p", "pkg", bad, "a.txt"),
        ):
            assert_error(await client.get(url), 400, 404, 405)
            assert_error(await client.delete(url), 400, 404, 405)
    # Query parameters with control characters are refused or match nothing
    # (a NUL must not cut the term short, nor upset the database).
    for url, params in (
        (f"{API}/projects", {"q": "p\x00zzz"}),
        (f"{API}/projects", {"q": "\x00"}),
        (f"{API}/search", {"q": "pkg\x00"}),
        (f"{API}/search", {"q": "\x00"}),
        (f"{API}/audit", {"action": "file.upload\x00"}),
        (f"{API}/audit", {"target": "p\x00"}),
        (f"{API}/audit", {"actor": "\x00"}),
        (f"{API}/search", {"q": "pkg", "project": "p\x00"}),
        (f"{API}/search", {"q": "pkg", "format": "generic\x00"}),
    ):
        r = await client.get(url, params=params)
        if r.status_code == 200:
            assert r.json() == [], (url, params)
        else:
            assert_error(r, 400, 422)
    # Absurd numbers are answered or refused, never passed on to fail in the database.
    for url, params in (
        (f"{API}/projects", {"offset": str(10**30)}),
        (f"{API}/projects", {"offset": "-1"}),
        (f"{API}/project/p/packages", {"offset": str(10**30)}),
        (f"{API}/audit", {"before": str(10**30)}),
        (f"{API}/audit", {"before": str(-(10**30))}),
        (f"{API}/audit", {"limit": "0"}),
        (f"{API}/search", {"q": "pkg", "limit": str(10**30)}),
    ):
        r = await client.get(url, params=params)
        if r.status_code != 200:
            assert_error(r, 400, 422)
    assert await snapshot(client, settings) == seeded


INVALID_PROJECT_NAMES = [
    "",
    "..",
    ".",
    ".hidden",
    "-dash",
    "trailing-",
    "a/b",
    "a\\b",
    "a/../b",
    "a\x00b",
    "a\nb",
    "a\rb",
    "a\tb",
    "a b",
    " a",
    "ä",
    "a:b",
    "a..b",
    "x" * 101,
    "x" * 300,
]


async def test_invalid_names_and_text_on_create(
    client: httpx.AsyncClient, settings: Settings, seeded: dict[str, Any]
) -> None:
    for name in INVALID_PROJECT_NAMES:
        r = await client.post(f"{API}/projects", json={"name": name})
        assert_error(r, 400, 422)
    for body in ({"name": 5}, {"name": None}, {"name": ["p"]}, {}):
        assert_error(await client.post(f"{API}/projects", json=body), 422)

    for name in [*INVALID_PROJECT_NAMES, "x" * 215]:
        if name == "x" * 101:
            continue  # a valid package name (up to 214)
        for fmt in ("generic", "pypi"):
            if (name, fmt) == ("a..b", "pypi"):
                continue  # PEP 508 allows it (normalised to a-b); no ``..`` path element
            r = await client.post(f"{API}/project/p/packages", json={"name": name, "format": fmt})
            assert_error(r, 400, 422)
    for fmt in ("maven", "", "PYPI", "pypi\x00"):
        r = await client.post(f"{API}/project/p/packages", json={"name": "ok", "format": fmt})
        assert_error(r, 400, 422)
    assert await snapshot(client, settings) == seeded

    # Control characters in descriptions and messages.
    version = f"{API}/project/p/packages/pkg/versions/1.0"
    for method, url, payload in (
        ("POST", f"{API}/projects", {"name": "p2", "description": "a\x00b"}),
        ("PATCH", f"{API}/project/p", {"description": "\x00"}),
        ("PATCH", f"{API}/project/p", {"description": "bell\x07"}),
        ("POST", f"{API}/project/p/packages", {"name": "x", "description": "\x00"}),
        ("PATCH", version, {"deprecated": "use 2.0\x00"}),
        ("PATCH", version, {"yanked": True, "yank_reason": "esc \x1b[31m"}),
    ):
        r = await client.request(method, url, json=payload)
        assert_error(r, 400, 422)
    assert await snapshot(client, settings) == seeded
    # Tabs and line breaks are ordinary text.
    r = await client.patch(f"{API}/project/p", json={"description": "line 1\r\nline\t2"})
    assert r.status_code == 200, r.text
    assert r.json()["description"] == "line 1\r\nline\t2"


async def test_unknown_resources_are_404(
    client: httpx.AsyncClient, settings: Settings, seeded: dict[str, Any]
) -> None:
    missing = [
        f"{API}/project/nope",
        f"{API}/project/nope/packages",
        f"{API}/project/nope/packages/pkg",
        f"{API}/project/p/packages/nope",
        f"{API}/project/p/packages/nope/versions",
        f"{API}/project/p/packages/pkg/versions/9.9",
        file_path("nope", "pkg", "1.0", "a.txt"),
        file_path("p", "nope", "1.0", "a.txt"),
        file_path("p", "pkg", "9.9", "a.txt"),
        file_path("p", "pkg", "1.0", "nope.txt"),
        f"{API}/artifacts/{'0' * 64}",
        f"{API}/artifacts/{'0' * 64}/content",
        f"{API}/no-such-endpoint",
    ]
    for url in missing:
        assert_error(await client.get(url), 404, code="not_found")
    for url in missing[:6]:
        assert_error(await client.delete(url), 404, 405)
    assert_error(
        await client.patch(f"{API}/project/nope", json={"description": "x"}), 404, code="not_found"
    )
    assert_error(
        await client.patch(f"{API}/project/p/packages/pkg/versions/9.9", json={"yanked": True}),
        404,
        code="not_found",
    )
    assert_error(
        await client.post(f"{API}/project/nope/packages", json={"name": "x"}),
        404,
        code="not_found",
    )
    assert await snapshot(client, settings) == seeded


async def test_malformed_json_bodies_are_422(
    client: httpx.AsyncClient, settings: Settings, seeded: dict[str, Any]
) -> None:
    json_type = {"content-type": "application/json"}
    bodies = [
        b"{",
        b'{"name": "x",}',
        b"[]",
        b'"p2"',
        b"null",
        b"",
        b"\xff\xfe",
        b'{"name": "x"garbage',
    ]
    for body in bodies:
        for method, url in (
            ("POST", f"{API}/projects"),
            ("PATCH", f"{API}/project/p"),
            ("POST", f"{API}/project/p/packages"),
            ("PATCH", f"{API}/project/p/packages/pkg/versions/1.0"),
            ("POST", f"{API}/uploads"),
        ):
            r = await client.request(method, url, content=body, headers=json_type)
            assert_error(r, 422, code="validation_error")
    wrong_types = [
        ("POST", f"{API}/projects", {"name": "p2", "is_public": "maybe"}),
        ("POST", f"{API}/projects", {"name": "p2", "description": ["x"]}),
        ("PATCH", f"{API}/project/p", {"upstream": {"on": True}}),
        ("PATCH", f"{API}/project/p/packages/pkg/versions/1.0", {"yanked": "very"}),
        ("POST", f"{API}/project/p/packages", {"name": "x", "format": 3}),
    ]
    for method, url, payload in wrong_types:
        assert_error(await client.request(method, url, json=payload), 422, code="validation_error")
    # Valid JSON sent as another content type is not silently accepted.
    r = await client.post(
        f"{API}/projects",
        content=json.dumps({"name": "p2"}),
        headers={"content-type": "text/plain"},
    )
    assert_error(r, 415, 422)
    assert await snapshot(client, settings) == seeded


async def test_checksum_mismatch_stores_nothing(
    client: httpx.AsyncClient, settings: Settings, seeded: dict[str, Any]
) -> None:
    wrong = hashlib.sha256(b"something else").hexdigest()
    for declared in (wrong, "0" * 64, "not-a-hash", "A" * 64):
        r = await client.put(
            file_path("p", "fresh", "1.0", "f.bin"),
            content=EVIL,
            headers={"X-Checksum-Sha256": declared},
        )
        assert_error(r, 400, code="checksum_mismatch")
        assert hashlib.sha256(EVIL).hexdigest() in r.json()["error"]["message"]
    # Into an existing version too, and through the browser upload.
    r = await client.put(
        file_path("p", "pkg", "1.0", "b.bin"), content=EVIL, headers={"X-Checksum-Sha256": wrong}
    )
    assert_error(r, 400, code="checksum_mismatch")
    r = await client.post(
        f"{API}/project/p/packages/pkg/upload",
        data={"version": "1.0", "sha256": wrong},
        files={"file": ("b.bin", EVIL, "application/octet-stream")},
    )
    assert_error(r, 400, code="checksum_mismatch")

    assert await snapshot(client, settings) == seeded
    await assert_not_stored(client, settings, EVIL)
    assert_error(await client.get(f"{API}/project/p/packages/fresh"), 404)

    # The right checksum (any case) is accepted.
    r = await client.put(
        file_path("p", "fresh", "1.0", "f.bin"),
        content=EVIL,
        headers={"X-Checksum-Sha256": hashlib.sha256(EVIL).hexdigest().upper()},
    )
    assert r.status_code == 201, r.text


def huge_project_body() -> bytes:
    return json.dumps({"name": "huge", "description": "d" * (1024 * 1024 + 10)}).encode()


async def _chunks(data: bytes, size: int) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


async def test_body_over_upload_limit_is_413(
    client: httpx.AsyncClient, settings: Settings, seeded: dict[str, Any]
) -> None:
    big = b"B" * (MAX + 1)
    url = file_path("p", "pkg", "2.0", "big.bin")
    declared = await client.put(url, content=big)
    assert "content-length" in declared.request.headers
    assert_error(declared, 413, code="too_large")

    for piece in (100, 7, MAX + 1, 4096):
        request = client.build_request("PUT", url, content=_chunks(big, piece))
        assert request.headers.get("transfer-encoding") == "chunked"
        assert "content-length" not in request.headers
        assert_error(await client.send(request), 413, code="too_large")

    r = await client.post(
        f"{API}/project/p/packages/pkg/upload",
        data={"version": "2.0"},
        files={"file": ("big.bin", big, "application/octet-stream")},
    )
    assert_error(r, 413, code="too_large")
    r = await client.post(
        f"{API}/uploads",
        json={
            "project": "p",
            "package": "pkg",
            "version": "2.0",
            "filename": "big.bin",
            "size": MAX + 1,
        },
    )
    assert_error(r, 413, code="too_large")

    assert await snapshot(client, settings) == seeded
    await assert_not_stored(client, settings, big)

    # JSON endpoints stop at 1 MiB.
    r = await client.post(
        f"{API}/projects", content=huge_project_body(), headers={"content-type": "application/json"}
    )
    assert_error(r, 413, code="too_large")
    assert await snapshot(client, settings) == seeded

    # Exactly the upload limit is fine, streamed or not.
    exact = b"E" * MAX
    r = await client.send(client.build_request("PUT", url, content=_chunks(exact, 300)))
    assert r.status_code == 201, r.text
    assert r.json()["size"] == MAX


async def test_chunked_json_body_over_1mib_is_413(client: httpx.AsyncClient) -> None:
    request = client.build_request(
        "POST",
        f"{API}/projects",
        content=_chunks(huge_project_body(), 64 * 1024),
        headers={"content-type": "application/json"},
    )
    assert_error(await client.send(request), 413, code="too_large")
    assert_error(await client.get(f"{API}/project/huge"), 404)


async def test_json_body_over_1mib_under_project_path_is_413(stack_settings: Settings) -> None:
    """With the default (large) upload limit, JSON endpoints still stop at 1 MiB."""
    app = create_app(stack_settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        headers = bearer(await make_token(app, "admin"))
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver", headers=headers
        ) as c:
            assert (await c.post(f"{API}/projects", json={"name": "p"})).status_code == 201
            before = (await c.get(f"{API}/project/p")).json()
            body = json.dumps({"description": "d" * (2 * 1024 * 1024)}).encode()
            for method, url in (
                ("PATCH", f"{API}/project/p"),
                ("POST", f"{API}/project/p/packages"),
            ):
                r = await c.request(
                    method, url, content=body, headers={"content-type": "application/json"}
                )
                assert_error(r, 413, code="too_large")
            assert (await c.get(f"{API}/project/p")).json() == before


async def test_unsatisfiable_range_is_416(
    client: httpx.AsyncClient, settings: Settings, seeded: dict[str, Any]
) -> None:
    size = len(SEED)
    sha = hashlib.sha256(SEED).hexdigest()
    for url in (file_path("p", "pkg", "1.0", "a.txt"), f"{API}/artifacts/{sha}/content"):
        for header in (f"bytes={size}-", f"bytes={size + 5}-{size + 10}", "bytes=-0", "bytes=5-2"):
            r = await client.get(url, headers={"Range": header})
            assert_error(r, 416, code="range_not_satisfiable")
            assert r.headers["content-range"] == f"bytes */{size}"
        head = await client.head(url, headers={"Range": f"bytes={size}-"})
        assert head.status_code == 416
        assert head.headers["content-range"] == f"bytes */{size}"
        # A satisfiable range still works.
        ok = await client.get(url, headers={"Range": "bytes=4-6"})
        assert ok.status_code == 206
        assert ok.content == SEED[4:7]
        assert ok.headers["content-range"] == f"bytes 4-6/{size}"
    assert await snapshot(client, settings) == seeded
