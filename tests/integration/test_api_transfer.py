"""Uploading and downloading files over the REST API, on the configured stack.

Uploads: raw streamed PUT (fixed-length and chunked bodies, with and without
``X-Checksum-Sha256``) and the multipart browser upload. Downloads: by file
path and by SHA-256, with ETag / If-None-Match, Range / If-Range, HEAD and the
checksum headers, in-process and against a real ``orchard serve`` (granian)
over HTTP. Also: the presigned S3 redirect, the Prometheus counters and the
structured log lines of an upload and a dedup hit.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from orchard.settings import Settings
from tests.conftest import STACK, LiveServer

PROJECT = "p"
FILE_URL = "/api/v1/project/p/packages/pkg/versions/1.0/files/{name}"
UPLOAD_URL = "/api/v1/project/p/packages/pkg/upload"

# Odd sizes, so that chunk and range boundaries fall everywhere but on a power of two.
DATA = os.urandom(300 * 1024 + 17)
SHA = hashlib.sha256(DATA).hexdigest()
SIZE = len(DATA)
BIG = os.urandom(3 * 1024 * 1024 + 1234)  # for the real server
BIG_SHA = hashlib.sha256(BIG).hexdigest()


@pytest.fixture
def settings(stack_settings: Settings, request: pytest.FixtureRequest) -> Settings:
    """The stack's settings; a test may change some with indirect parametrisation."""
    updates: dict[str, Any] = getattr(request, "param", {})
    return stack_settings.model_copy(update=updates) if updates else stack_settings


def digests(data: bytes) -> dict[str, str]:
    return {
        "sha256": hashlib.sha256(data).hexdigest(),
        "md5": hashlib.md5(data, usedforsecurity=False).hexdigest(),
        "sha1": hashlib.sha1(data, usedforsecurity=False).hexdigest(),
        "sha512": hashlib.sha512(data).hexdigest(),
    }


async def chunked(data: bytes, size: int = 64 * 1024 + 3) -> AsyncIterator[bytes]:
    """A body without Content-Length: httpx sends it with chunked encoding."""
    for i in range(0, len(data), size):
        yield data[i : i + size]


async def create_project(client: httpx.AsyncClient, name: str = PROJECT) -> None:
    r = await client.post("/api/v1/projects", json={"name": name})
    assert r.status_code == 201, r.text


@pytest.fixture
async def stored(client: httpx.AsyncClient) -> str:
    """DATA stored as p/pkg/1.0/data.bin; returns its file URL."""
    await create_project(client)
    url = FILE_URL.format(name="data.bin")
    r = await client.put(url, content=DATA)
    assert r.status_code == 201, r.text
    return url


async def assert_upload(
    client: httpx.AsyncClient, body: dict[str, Any], data: bytes, *, created: bool, refs: int
) -> None:
    for name, value in digests(data).items():
        assert body[name] == value, name
    assert body["size"] == len(data)
    assert body["created"] is created
    # Deduplication stays internal (issue 15); the administrator's artifact view counts.
    assert "deduplicated" not in body
    assert "ref_count" not in body
    detail = (await client.get(f"/api/v1/artifacts/{body['sha256']}")).json()
    assert detail["ref_count"] == refs


async def assert_nothing_stored(client: httpx.AsyncClient, sha256: str, url: str) -> None:
    assert (await client.get(f"/api/v1/artifacts/{sha256}")).status_code == 404
    assert (await client.get(url)).status_code == 404


# --- uploads -------------------------------------------------------------------------------


async def test_put_streamed(client: httpx.AsyncClient) -> None:
    """Fixed-length and chunked bodies, with and without X-Checksum-Sha256."""
    await create_project(client)
    r = await client.put(FILE_URL.format(name="a.bin"), content=DATA)
    assert r.status_code == 201, r.text
    await assert_upload(client, r.json(), DATA, created=True, refs=1)
    # the canonical URL names the format: generic:pkg
    assert r.headers["location"].endswith(
        FILE_URL.format(name="a.bin").replace("/pkg/", "/generic:pkg/")
    )

    r = await client.put(
        FILE_URL.format(name="b.bin"), content=DATA, headers={"X-Checksum-Sha256": SHA.upper()}
    )
    assert r.status_code == 201, r.text
    await assert_upload(client, r.json(), DATA, created=True, refs=2)

    # The same bytes at the same path again: idempotent, 200, nothing new.
    r = await client.put(FILE_URL.format(name="a.bin"), content=DATA)
    assert r.status_code == 200, r.text
    await assert_upload(client, r.json(), DATA, created=False, refs=2)

    # Different bytes at a published path: immutable.
    r = await client.put(FILE_URL.format(name="a.bin"), content=b"other")
    assert r.status_code == 409, r.text

    # Chunked bodies (no Content-Length), without and with a checksum.
    r = await client.put(FILE_URL.format(name="c.bin"), content=chunked(DATA))
    assert r.status_code == 201, r.text
    await assert_upload(client, r.json(), DATA, created=True, refs=3)

    other = os.urandom(200_001)
    r = await client.put(
        FILE_URL.format(name="d.bin"),
        content=chunked(other),
        headers={"X-Checksum-Sha256": hashlib.sha256(other).hexdigest()},
    )
    assert r.status_code == 201, r.text
    await assert_upload(client, r.json(), other, created=True, refs=1)
    got = await client.get(FILE_URL.format(name="d.bin"))
    assert got.content == other


async def test_rejected_uploads_store_nothing(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    """Wrong checksums (PUT, chunked PUT, multipart) are 400s that store nothing;
    a multipart body without its fields is a 400."""
    await create_project(client)
    url = FILE_URL.format(name="bad.bin")
    for body in (DATA, chunked(DATA)):
        r = await client.put(url, content=body, headers={"X-Checksum-Sha256": "0" * 64})
        assert r.status_code == 400, r.text
        assert r.json()["error"]["code"] == "checksum_mismatch"
        await assert_nothing_stored(client, SHA, url)

    r = await client.post(
        UPLOAD_URL,
        data={"version": "1.0", "sha256": "f" * 64},
        files={"file": ("form.bin", DATA)},
    )
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "checksum_mismatch"
    await assert_nothing_stored(client, SHA, FILE_URL.format(name="form.bin"))

    cases: list[tuple[dict[str, str], dict[str, Any]]] = [
        ({}, {"file": ("a.bin", b"abc")}),  # no version
        ({"version": "1.0"}, {"other": ("ignored.txt", b"")}),  # no file part
        ({"version": "1.0", "file": "not-a-file"}, {"other": ("x", b"")}),  # file as a field
    ]
    for data, files in cases:
        r = await client.post(UPLOAD_URL, data=data, files=files)
        assert r.status_code == 400, (data, r.text)
        assert r.json()["error"]["code"] == "invalid_input"
    assert (await client.get("/api/v1/project/p/packages/pkg")).status_code == 404
    if STACK != "production":  # no staged copy is left behind either
        assert list((settings.data_dir / "blobs" / ".staging").iterdir()) == []


async def test_multipart_upload(client: httpx.AsyncClient) -> None:
    await create_project(client)
    r = await client.post(
        UPLOAD_URL,
        data={"version": "1.0", "sha256": SHA},
        files={"file": ("form.bin", DATA, "application/octet-stream")},
    )
    assert r.status_code == 201, r.text
    body = r.json()
    await assert_upload(client, body, DATA, created=True, refs=1)
    assert (body["package"], body["version"], body["filename"]) == ("pkg", "1.0", "form.bin")
    got = await client.get(FILE_URL.format(name="form.bin"))
    assert got.status_code == 200
    assert got.content == DATA

    # Without the optional sha256.
    r = await client.post(UPLOAD_URL, data={"version": "2.0"}, files={"file": ("x.txt", b"x")})
    assert r.status_code == 201, r.text
    assert r.json()["sha256"] == hashlib.sha256(b"x").hexdigest()


# --- downloads (in-process) ----------------------------------------------------------------


def assert_download_headers(r: httpx.Response, data: bytes, filename: str | None) -> None:
    d = digests(data)
    assert r.headers["etag"] == f'"{d["sha256"]}"'
    assert r.headers["accept-ranges"] == "bytes"
    assert r.headers["x-checksum-sha256"] == d["sha256"]
    assert r.headers["x-checksum-sha1"] == d["sha1"]
    assert r.headers["x-checksum-md5"] == d["md5"]
    if filename is not None:
        disposition = r.headers["content-disposition"]
        assert disposition.startswith("attachment;")
        assert f'filename="{filename}"' in disposition


def download_urls(file_url: str, sha256: str) -> list[tuple[str, str | None]]:
    return [(file_url, file_url.rsplit("/", 1)[-1]), (f"/api/v1/artifacts/{sha256}/content", None)]


async def test_download_full_and_head(client: httpx.AsyncClient, stored: str) -> None:
    for url, filename in download_urls(stored, SHA):
        r = await client.get(url)
        assert r.status_code == 200, r.text
        assert r.content == DATA
        assert r.headers["content-length"] == str(len(DATA))
        assert_download_headers(r, DATA, filename)

        head = await client.head(url)
        assert head.status_code == 200
        assert head.content == b""
        assert head.headers["content-length"] == str(len(DATA))
        assert_download_headers(head, DATA, filename)
        for name in ("etag", "content-type", "content-disposition", "x-checksum-md5"):
            assert head.headers.get(name) == r.headers.get(name), name

    # A filename beyond ASCII: a plain fallback and the RFC 5987 form.
    name = "résumé data.bin"
    assert (await client.put(FILE_URL.format(name=name), content=b"hello")).status_code == 201
    r = await client.get(FILE_URL.format(name=name))
    assert r.content == b"hello"
    assert "filename*=UTF-8''r%C3%A9sum%C3%A9%20data.bin" in r.headers["content-disposition"]

    # Unknown files and artifacts.
    assert (await client.get(f"/api/v1/artifacts/{'0' * 64}/content")).status_code == 404
    assert (await client.get("/api/v1/artifacts/not-a-sha/content")).status_code == 404
    assert (await client.get(FILE_URL.format(name="nope.bin"))).status_code == 404


IF_NONE_MATCH = [f'"{SHA}"', f'W/"{SHA}"', f'"abc", "{SHA}"', f'"abc",W/"{SHA}" , "def"', "*"]


async def test_conditional_requests(client: httpx.AsyncClient, stored: str) -> None:
    for url, _ in download_urls(stored, SHA):
        for header in IF_NONE_MATCH:
            for method in ("GET", "HEAD"):
                r = await client.request(method, url, headers={"If-None-Match": header})
                assert r.status_code == 304, (method, url, header)
                assert r.content == b""
                assert r.headers["etag"] == f'"{SHA}"'
        r = await client.get(url, headers={"If-None-Match": '"0123", W/"4567"'})
        assert r.status_code == 200
        assert r.content == DATA
        # If-Range: a stale validator gets the whole file, the current one the range.
        # The comparison is strong (RFC 9110 13.1.5): a weak tag or * is not a match.
        for validator in ('"not-it"', f'W/"{SHA}"', "*", "Wed, 21 Oct 2015 07:28:00 GMT"):
            headers = {"Range": "bytes=10-19", "If-Range": validator}
            r = await client.get(url, headers=headers)
            assert r.status_code == 200, validator
            assert r.content == DATA
            assert r.headers["content-length"] == str(SIZE)
            assert "content-range" not in r.headers
        r = await client.get(url, headers={"Range": "bytes=10-19", "If-Range": f'"{SHA}"'})
        assert r.status_code == 206
        assert r.content == DATA[10:20]
        # A date, even the file's own Last-Modified, is not our validator.
        modified = (await client.get(url)).headers.get("last-modified")
        if modified:
            r = await client.get(url, headers={"Range": "bytes=10-19", "If-Range": modified})
            assert r.status_code == 200
            assert r.content == DATA


RANGES = [
    ("bytes=0-0", 0, 0),
    ("bytes=0-99", 0, 99),
    ("bytes=1000-200000", 1000, 200000),
    (f"bytes=1000-{SIZE + 5000}", 1000, SIZE - 1),  # end past the file: clamped
    (f"bytes={SIZE - 1}-", SIZE - 1, SIZE - 1),
    ("bytes=123456-", 123456, SIZE - 1),
    ("bytes=-1", SIZE - 1, SIZE - 1),
    ("bytes=-70000", SIZE - 70000, SIZE - 1),
    (f"bytes=-{SIZE + 10}", 0, SIZE - 1),  # suffix longer than the file: all of it
]
UNSATISFIABLE = [f"bytes={SIZE}-", f"bytes={SIZE + 10}-{SIZE + 20}", "bytes=-0", "bytes=20-10"]
FULL_BODY = ["bytes=0-9, 20-29", "bytes=0-9,-5", "items=0-9"]  # several ranges, unknown unit


async def test_ranges(client: httpx.AsyncClient, stored: str) -> None:
    for url, filename in download_urls(stored, SHA):
        for header, start, end in RANGES:
            r = await client.get(url, headers={"Range": header})
            assert r.status_code == 206, (url, header, r.text)
            assert r.content == DATA[start : end + 1], header
            assert r.headers["content-range"] == f"bytes {start}-{end}/{SIZE}"
            assert r.headers["content-length"] == str(end - start + 1)
            assert_download_headers(r, DATA, filename)

            head = await client.head(url, headers={"Range": header})
            assert head.status_code == 206
            assert head.content == b""
            assert head.headers["content-range"] == f"bytes {start}-{end}/{SIZE}"
            assert head.headers["content-length"] == str(end - start + 1)
        for header in UNSATISFIABLE:
            r = await client.get(url, headers={"Range": header})
            assert r.status_code == 416, (url, header, r.text)
            assert r.headers["content-range"] == f"bytes */{SIZE}"
            assert r.json()["error"]["code"] == "range_not_satisfiable"
        for header in FULL_BODY:
            r = await client.get(url, headers={"Range": header})
            assert r.status_code == 200, (url, header)
            assert r.content == DATA
            assert r.headers["content-length"] == str(SIZE)
            assert "content-range" not in r.headers


# --- downloads from a real server (granian, real HTTP) --------------------------------------


async def test_live_server_download(live_server: LiveServer) -> None:
    async with httpx.AsyncClient(
        base_url=live_server.url, timeout=30, headers=live_server.auth
    ) as http:
        await create_project(http)
        url = FILE_URL.format(name="big.bin")
        r = await http.put(
            url, content=chunked(BIG, 256 * 1024), headers={"X-Checksum-Sha256": BIG_SHA}
        )
        assert r.status_code == 201, r.text
        assert r.json()["size"] == len(BIG)

        for target, filename in download_urls(url, BIG_SHA):
            async with http.stream("GET", target) as full:
                assert full.status_code == 200
                assert full.headers["content-length"] == str(len(BIG))
                assert_download_headers(full, BIG, filename)
                body = b"".join([chunk async for chunk in full.aiter_raw()])
            assert len(body) == len(BIG)
            assert hashlib.sha256(body).hexdigest() == BIG_SHA

            start, end = 1_000_000, 2_500_000
            part = await http.get(target, headers={"Range": f"bytes={start}-{end}"})
            assert part.status_code == 206
            assert part.headers["content-range"] == f"bytes {start}-{end}/{len(BIG)}"
            assert part.content == BIG[start : end + 1]
            tail = await http.get(target, headers={"Range": "bytes=-4096"})
            assert tail.status_code == 206
            assert tail.content == BIG[-4096:]
            bad = await http.get(target, headers={"Range": f"bytes={len(BIG)}-"})
            assert bad.status_code == 416
            assert bad.headers["content-range"] == f"bytes */{len(BIG)}"

            head = await http.head(target)
            assert head.status_code == 200
            assert head.content == b""
            assert head.headers["content-length"] == str(len(BIG))
            assert_download_headers(head, BIG, filename)

            for etag in (f'"{BIG_SHA}"', f'W/"{BIG_SHA}"', f'"x", "{BIG_SHA}"'):
                cached = await http.get(target, headers={"If-None-Match": etag})
                assert cached.status_code == 304, etag
                assert cached.content == b""
                assert cached.headers["etag"] == f'"{BIG_SHA}"'
        # Keep-alive survived all of it: one more full download on the same client.
        again = await http.get(url)
        assert again.content == BIG


# --- presigned S3 redirect ------------------------------------------------------------------


@pytest.mark.skipif(STACK != "production", reason="presigned URLs need S3 storage")
@pytest.mark.parametrize("settings", [{"s3_presigned_redirect": True}], indirect=True)
async def test_presigned_redirect(client: httpx.AsyncClient, settings: Settings) -> None:
    assert settings.s3_presigned_redirect
    await create_project(client)
    url = FILE_URL.format(name="signed file.bin")
    assert (await client.put(url, content=DATA)).status_code == 201
    for target in (url, f"/api/v1/artifacts/{SHA}/content"):
        r = await client.get(target)
        assert r.status_code == 307, r.text
        assert r.headers["etag"] == f'"{SHA}"'
        location = r.headers["location"]
        assert location.startswith(str(settings.s3_endpoint_url))
        async with httpx.AsyncClient(timeout=30) as direct:
            got = await direct.get(location)
        assert got.status_code == 200, got.text
        assert got.content == DATA
    # A conditional request is still answered by Orchard itself.
    r = await client.get(url, headers={"If-None-Match": f'"{SHA}"'})
    assert r.status_code == 304


# --- metrics and logs -----------------------------------------------------------------------


def metric(text: str, sample: str, **labels: str) -> float:
    total = 0.0
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items()):
                total += s.value
    return total


class ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def orchard_log() -> Iterator[ListHandler]:
    """Records of the ``orchard`` logger (which does not propagate to root)."""
    handler = ListHandler()
    logger = logging.getLogger("orchard")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


async def test_metrics_and_logs(client: httpx.AsyncClient, orchard_log: ListHandler) -> None:
    """Counters move with an upload, a download and a dedup hit; both uploads are
    logged as structured events naming the artifact."""
    await create_project(client)
    before = (await client.get("/metrics")).text
    url = FILE_URL.format(name="m.bin")
    assert (await client.put(url, content=DATA)).status_code == 201
    assert (await client.get(url)).content == DATA
    r = await client.put(FILE_URL.format(name="m2.bin"), content=DATA)
    assert r.json()["created"] is True
    after_response = await client.get("/metrics")
    assert after_response.status_code == 200
    after = after_response.text

    def delta(sample: str, **labels: str) -> float:
        return metric(after, sample, **labels) - metric(before, sample, **labels)

    route = "/api/v1" + "/project/{project}/packages/{package}/versions/{version}/files/{filename}"
    assert delta("orchard_http_requests_total", method="PUT", route=route, status="201") == 2
    assert delta("orchard_http_requests_total", method="GET", route=route, status="200") == 1
    assert delta("orchard_uploads_total", result="stored") == 2
    assert delta("orchard_dedup_hits_total") == 1
    assert delta("orchard_dedup_bytes_saved_total") == len(DATA)
    assert delta("orchard_http_bytes_in_total") >= 2 * len(DATA)
    assert metric(after, "orchard_http_bytes_in_total") > 0
    assert delta("orchard_http_bytes_out_total") >= len(DATA)

    events = [
        (getattr(r, "event", None), getattr(r, "artifact", None), getattr(r, "target", None))
        for r in orchard_log.records
    ]
    assert ("upload", SHA, "p/pkg/1.0/m.bin") in events
    assert ("dedup", SHA, "p/pkg/1.0/m2.bin") in events
    upload = next(r for r in orchard_log.records if getattr(r, "event", None) == "upload")
    assert upload.name.startswith("orchard.")
    assert getattr(upload, "size", None) == len(DATA)
