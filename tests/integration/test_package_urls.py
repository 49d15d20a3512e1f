"""The REST API addresses any package by one URL form (issue 16 point 2):
``/project/{p}/packages/{format}:{name}`` with the name percent-encoded as
ONE segment (``npm:%40babel%2Fcore``, ``go:github.com%2Fpkg%2Ferrors``).
npm scopes, legacy npm names and Go module paths are created, listed,
fetched and deleted through it; every ``url`` an answer carries GETs the
object it belongs to; bad names are 4xx, never 5xx.

Runs on the stack chosen by ``ORCHARD_TEST_STACK``; one test goes through
``orchard serve`` (granian) to prove the raw path reaches the router there.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from orchard.core import catalog
from orchard.core.artifacts import CachedFile, add_cached_file

API = "/api/v1"
PKGS = f"{API}/project/p/packages"

# (format, name) of the packages created here: npm scopes, Go module paths
# (one with a major-version suffix and capitals, one with an element named
# like a route suffix), and plain names.
CREATED = [
    ("npm", "@babel/core"),
    ("go", "github.com/pkg/errors"),
    ("go", "github.com/Azure/go-autorest/v14"),
    ("go", "example.com/versions"),
    ("generic", "tool"),
]


def seg(fmt: str, name: str) -> str:
    return f"{fmt}:{quote(name, safe='')}"


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def _project(client: httpx.AsyncClient) -> None:
    r = await client.post(f"{API}/projects", json={"name": "p"})
    assert r.status_code == 201, r.text


async def _create(client: httpx.AsyncClient, fmt: str, name: str) -> dict[str, Any]:
    r = await client.post(PKGS, json={"name": name, "format": fmt})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    assert body["url"].endswith(f"{PKGS}/{seg(fmt, name)}"), body["url"]
    return body


async def test_scoped_and_module_path_names_round_trip(client: httpx.AsyncClient) -> None:
    await _project(client)
    for fmt, name in CREATED:
        await _create(client, fmt, name)
    for i, (fmt, name) in enumerate(CREATED):
        base = f"{PKGS}/{seg(fmt, name)}"
        data = f"{fmt} {name}".encode()
        put = await client.put(f"{base}/versions/1.{i}.0/files/f.bin", content=data)
        assert put.status_code == 201, (name, put.text)
        assert put.json()["format"] == fmt and put.json()["package"] == name
        assert put.headers["location"] == put.json()["url"]
        got = await client.get(put.json()["url"])
        assert got.status_code == 200 and got.content == data, name
        package = await client.get(base)
        assert package.status_code == 200, name
        assert (package.json()["name"], package.json()["format"]) == (name, fmt)
        versions = await client.get(f"{base}/versions")
        assert [v["version"] for v in versions.json()] == [f"1.{i}.0"], name
        version = await client.get(f"{base}/versions/1.{i}.0")
        assert [f["filename"] for f in version.json()["files"]] == ["f.bin"], name

    # Listed, and filtered by format.
    listed = (await client.get(PKGS)).json()
    assert sorted((p["format"], p["name"]) for p in listed) == sorted(CREATED)
    go = (await client.get(PKGS, params={"format": "go"})).json()
    assert sorted(p["name"] for p in go) == sorted(n for f, n in CREATED if f == "go")
    assert (await client.get(PKGS, params={"format": "cobol"})).status_code == 400

    # ``example.com/versions`` and ``example.com`` are two modules: the
    # encoded segment keeps them apart.
    await _create(client, "go", "example.com")
    short = await client.get(f"{PKGS}/go:example.com/versions")
    assert short.status_code == 200 and short.json() == []
    long_ = await client.get(f"{PKGS}/{seg('go', 'example.com/versions')}/versions")
    assert [v["version"] for v in long_.json()] == ["1.3.0"]

    # A bare name works while one format has it (the segment still encoded).
    bare = await client.get(f"{PKGS}/{quote('@babel/core', safe='')}")
    assert bare.status_code == 200 and bare.json()["format"] == "npm"
    # Lower-case or upper-case escapes are one and the same.
    lower = await client.get(f"{PKGS}/npm:%40babel%2fcore")
    assert lower.status_code == 200 and lower.json()["name"] == "@babel/core"

    # Deleted: a version, then each package, by the same form.
    for i, (fmt, name) in enumerate(CREATED):
        base = f"{PKGS}/{seg(fmt, name)}"
        r = await client.delete(f"{base}/versions/1.{i}.0")
        assert r.status_code == 204, (name, r.text)
        r = await client.delete(base)
        assert r.status_code == 204, (name, r.text)
        assert (await client.get(base)).status_code == 404
    assert [p["name"] for p in (await client.get(PKGS)).json()] == ["example.com"]


async def test_multipart_upload_to_a_scoped_name(client: httpx.AsyncClient) -> None:
    await _project(client)
    await _create(client, "npm", "@types/node")
    r = await client.post(
        f"{PKGS}/{seg('npm', '@types/node')}/upload",
        data={"version": "20.1.0"},
        files={"file": ("node-20.1.0.tgz", b"tarball", "application/gzip")},
    )
    assert r.status_code == 201, r.text
    assert (await client.get(r.json()["url"])).content == b"tarball"


async def test_resumable_upload_names_a_scoped_package(client: httpx.AsyncClient) -> None:
    await _project(client)
    await _create(client, "npm", "@scope/pkg")
    data = b"resumable bytes"
    start = await client.post(
        f"{API}/uploads",
        json={
            "project": "p",
            "package": "npm:@scope/pkg",
            "version": "1.0.0",
            "filename": "pkg-1.0.0.tgz",
        },
    )
    assert start.status_code == 201, start.text
    upload = start.json()["id"]
    chunk = await client.patch(
        f"{API}/uploads/{upload}", content=data, headers={"Upload-Offset": "0"}
    )
    assert chunk.status_code in (200, 204), chunk.text
    done = await client.post(
        f"{API}/uploads/{upload}/complete", json={"sha256": hashlib.sha256(data).hexdigest()}
    )
    assert done.status_code == 201, done.text
    assert done.json()["format"] == "npm"
    assert (await client.get(done.json()["url"])).content == data


async def test_legacy_npm_name_is_read_and_deleted_but_not_created(
    app: Any, client: httpx.AsyncClient
) -> None:
    """``JSONStream`` (capitals) exists upstream: it can arrive through the
    cache, and the REST API then lists, fetches and deletes it; creating it
    here is refused."""
    await _project(client)
    refused = await client.post(PKGS, json={"name": "JSONStream", "format": "npm"})
    assert refused.status_code == 400 and "new packages" in refused.text
    db, storage = app.state.db, app.state.storage
    async with db.transaction() as session:
        project = await catalog.get_project(session, "p")
        staged = await storage.stage(_one(b"legacy"))
        place = CachedFile(
            project_id=project.id,
            project_name=project.name,
            package_name="JSONStream",
            version="1.3.5",
            filename="JSONStream-1.3.5.tgz",
            package_format="npm",
        )
        await add_cached_file(session, storage, place, staged)
    listed = (await client.get(PKGS, params={"format": "npm"})).json()
    assert [p["name"] for p in listed] == ["JSONStream"]
    package = await client.get(listed[0]["url"])
    assert package.status_code == 200 and package.json()["format"] == "npm"
    version = (await client.get(f"{listed[0]['url']}/versions/1.3.5")).json()
    assert (await client.get(version["files"][0]["url"])).content == b"legacy"
    assert (await client.get(f"{PKGS}/npm:jsonstream")).status_code == 404  # case-sensitive
    assert (await client.delete(listed[0]["url"])).status_code == 204
    assert (await client.get(PKGS)).json() == []


async def test_every_url_gets_its_object(client: httpx.AsyncClient) -> None:
    await _project(client)
    for fmt in ("generic", "pypi", "npm"):
        await _create(client, fmt, "yaml")
        r = await client.put(f"{PKGS}/{fmt}:yaml/versions/1.0/files/y.bin", content=fmt.encode())
        assert r.status_code == 201, r.text
    await _create(client, "npm", "@yaml/core")
    for package in (await client.get(PKGS)).json():
        got = await client.get(package["url"])
        assert got.status_code == 200 and got.json() == package, package["url"]
        for version in (await client.get(f"{package['url']}/versions")).json():
            one = await client.get(version["url"])
            assert one.status_code == 200, version["url"]
            assert one.json()["version"] == version["version"]
            for f in one.json()["files"]:
                assert (await client.get(f["url"])).content == package["format"].encode()
    hits = (await client.get(f"{API}/search", params={"q": "yaml"})).json()
    assert len(hits) == 4
    for hit in hits:
        got = await client.get(hit["url"])
        assert got.status_code == 200, hit["url"]
        assert (got.json()["display_name"], got.json()["format"]) == (hit["package"], hit["format"])
    # The bare name is ambiguous now: 409, with the names to use.
    bare = await client.get(f"{PKGS}/yaml/versions")
    assert bare.status_code == 409 and bare.json()["error"]["code"] == "ambiguous"


BAD_SEGMENTS = [
    "npm:%40a%2Fb%2Fc",  # two slashes in an npm name
    "npm:%2E%2E",
    "npm:..%2F..%2Fetc",
    "go:github.com%2F..%2Fx",
    "go:github.com%2F%2Fx",
    "go:github.com%2Fx%2F",
    "go:errors",  # no dot in the host
    "go:example.com%2Fx%2Fv1",
    "pypi:a%5Cb",
    "generic:a%2Fb",
    "nope:x",
    ":x",
    "npm:",
    "%00",
    "a%0Ab",
    "npm:%40babel%252Fcore",  # a literal %2F in the name
    "npm:%E2%80%AEx",  # a bidirectional override
    "x" * 300,
    "npm:%FF%FE",  # not UTF-8
]


@pytest.mark.parametrize("segment", BAD_SEGMENTS)
async def test_bad_names_are_4xx(client: httpx.AsyncClient, segment: str) -> None:
    await _project(client)
    base = f"{PKGS}/{segment}"
    for method, url in [
        ("GET", base),
        ("DELETE", base),
        ("GET", f"{base}/versions"),
        ("GET", f"{base}/versions/1.0"),
        ("PATCH", f"{base}/versions/1.0"),
        ("PUT", f"{base}/versions/1.0/files/f.bin"),
        ("GET", f"{base}/versions/1.0/files/f.bin"),
    ]:
        body = b"{}" if method == "PATCH" else b"x" if method == "PUT" else None
        r = await client.request(method, url, content=body)
        assert 400 <= r.status_code < 500, (method, url, r.status_code, r.text)
    created = await client.post(PKGS, json={"name": segment, "format": "npm"})
    assert 400 <= created.status_code < 500


async def test_encoded_names_through_a_real_server(live_server: Any) -> None:
    """granian hands the raw path over: the encoded segment routes there too."""
    async with httpx.AsyncClient(
        base_url=live_server.url, headers=live_server.auth, timeout=30
    ) as client:
        await _project(client)
        for fmt, name in (("npm", "@babel/core"), ("go", "example.com/versions")):
            await _create(client, fmt, name)
            base = f"{PKGS}/{seg(fmt, name)}"
            put = await client.put(f"{base}/versions/1.0.0/files/f.bin", content=b"ok")
            assert put.status_code == 201, put.text
            assert (await client.get(put.json()["url"])).content == b"ok"
            versions = await client.get(f"{base}/versions")
            assert [v["version"] for v in versions.json()] == ["1.0.0"]
            assert (await client.delete(base)).status_code == 204
