"""A package is identified by (project, name, format) (issue 16 point 1):
one project holds a generic, a PyPI and an npm ``yaml`` at once, each with
its own versions, through the REST API, hosted uploads and the proxy cache.

Runs on the stack chosen by ``ORCHARD_TEST_STACK``.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from orchard.core import catalog
from orchard.core.artifacts import CachedFile, add_cached_file
from orchard.db.models import Package
from orchard.errors import Ambiguous, NotFound

API = "/api/v1"
PKGS = f"{API}/project/p/packages"


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def _put(client: httpx.AsyncClient, ref: str, version: str, name: str, data: bytes) -> str:
    r = await client.put(f"{PKGS}/{ref}/versions/{version}/files/{name}", content=data)
    assert r.status_code == 201, r.text
    sha: str = r.json()["sha256"]
    return sha


async def _ref_count(client: httpx.AsyncClient, sha: str) -> int:
    r = await client.get(f"{API}/artifacts/{sha}")
    assert r.status_code == 200, r.text
    count: int = r.json()["ref_count"]
    return count


@pytest.fixture
async def three(client: httpx.AsyncClient) -> str:
    """Project ``p`` with generic, pypi and npm ``yaml``; the same bytes
    in each. Returns their sha256."""
    assert (await client.post(f"{API}/projects", json={"name": "p"})).status_code == 201
    for fmt in ("generic", "pypi", "npm"):
        r = await client.post(PKGS, json={"name": "yaml", "format": fmt})
        assert r.status_code == 201, r.text
        assert r.json()["format"] == fmt
    sha = ""
    for fmt, version in (("generic", "1.0"), ("pypi", "6.0.2"), ("npm", "2.8.0")):
        sha = await _put(client, f"{fmt}:yaml", version, "yaml.bin", b"same bytes")
    return sha


async def test_three_formats_of_one_name_each_with_its_versions(
    client: httpx.AsyncClient, three: str
) -> None:
    listed = (await client.get(PKGS)).json()
    assert sorted((p["name"], p["format"]) for p in listed) == [
        ("yaml", "generic"),
        ("yaml", "npm"),
        ("yaml", "pypi"),
    ]
    for fmt, version in (("generic", "1.0"), ("pypi", "6.0.2"), ("npm", "2.8.0")):
        package = await client.get(f"{PKGS}/{fmt}:yaml")
        assert package.status_code == 200 and package.json()["format"] == fmt
        versions = await client.get(f"{PKGS}/{fmt}:yaml/versions")
        assert [v["version"] for v in versions.json()] == [version], fmt
        file = await client.get(f"{PKGS}/{fmt}:yaml/versions/{version}/files/yaml.bin")
        assert file.status_code == 200 and file.content == b"same bytes"
    assert await _ref_count(client, three) == 3
    # The bare name names none of them alone.
    bare = await client.get(f"{PKGS}/yaml")
    assert bare.status_code == 409, bare.text
    assert bare.json()["error"]["code"] == "ambiguous"
    put = await client.put(f"{PKGS}/yaml/versions/9/files/x.bin", content=b"x")
    assert put.status_code == 409 and put.json()["error"]["code"] == "ambiguous"
    # A second package of one format and name is still refused.
    again = await client.post(PKGS, json={"name": "yaml", "format": "npm"})
    assert again.status_code == 409 and again.json()["error"]["code"] == "conflict"
    hits = (await client.get(f"{API}/search", params={"q": "yaml"})).json()
    assert sorted(h["format"] for h in hits if h["project"] == "p") == ["generic", "npm", "pypi"]


async def test_deleting_one_format_leaves_the_others(
    client: httpx.AsyncClient, three: str
) -> None:
    r = await client.delete(f"{PKGS}/pypi:yaml")
    assert r.status_code == 204, r.text
    assert (await client.get(f"{PKGS}/pypi:yaml")).status_code == 404
    assert sorted(p["format"] for p in (await client.get(PKGS)).json()) == ["generic", "npm"]
    assert await _ref_count(client, three) == 2
    assert (await client.delete(f"{PKGS}/npm:yaml/versions/2.8.0")).status_code == 204
    assert await _ref_count(client, three) == 1
    versions = await client.get(f"{PKGS}/generic:yaml/versions")
    assert [v["version"] for v in versions.json()] == ["1.0"]


async def test_bare_name_resolves_when_one_format_has_it(client: httpx.AsyncClient) -> None:
    """Today's references keep working: a bare name that one package
    answers to (under its own format's normalisation) is that package; an
    unknown bare name written to creates a generic package."""
    assert (await client.post(f"{API}/projects", json={"name": "p"})).status_code == 201
    r = await client.post(PKGS, json={"name": "Foo_Bar", "format": "pypi"})
    assert r.status_code == 201, r.text
    await _put(client, "foo.bar", "1.0", "a.bin", b"a")
    assert (await client.get(f"{PKGS}/Foo-Bar")).json()["format"] == "pypi"
    await _put(client, "other", "1.0", "b.bin", b"b")
    assert (await client.get(f"{PKGS}/other")).json()["format"] == "generic"
    for bad in ("nope:x", "pypi:", "pypi:-a", "npm:.hidden", "go:nodot", ".a"):
        r = await client.get(f"{PKGS}/{bad}")
        assert r.status_code == 400, bad


async def test_hosted_upload_beside_a_cached_file_of_another_format(
    app: Any, client: httpx.AsyncClient
) -> None:
    """The proxy cache's upsert is by (project, name, format): an npm
    ``yaml`` cached after a PyPI ``yaml`` gets its own package (the bug that
    opened issue 16), and ``catalog`` resolves each by format."""
    db, storage = app.state.db, app.state.storage
    for fmt, version in (("pypi", "6.0.2"), ("npm", "2.8.0")):
        async with db.transaction() as session:
            proxy = await catalog.get_project(session, catalog.PROXY_PROJECT)
            staged = await storage.stage(_one(f"{fmt} yaml".encode()))
            place = CachedFile(
                project_id=proxy.id,
                project_name=proxy.name,
                package_name="yaml",
                version=version,
                filename=f"yaml-{version}.tgz",
                package_format=fmt,
            )
            await add_cached_file(session, storage, place, staged)
    async with db.session() as session:
        proxy = await catalog.get_project(session, catalog.PROXY_PROJECT)
        rows = list(
            await session.scalars(
                select(Package).where(Package.project_id == proxy.id, Package.name == "yaml")
            )
        )
        assert sorted(p.format for p in rows) == ["npm", "pypi"]
        npm = await catalog.resolve_package(session, proxy, "npm:yaml")
        assert [v.version for v in await catalog.list_versions(session, npm)] == ["2.8.0"]
        pypi = await catalog.resolve_package(session, proxy, "pypi:yaml")
        assert [v.version for v in await catalog.list_versions(session, pypi)] == ["6.0.2"]
        with pytest.raises(Ambiguous):
            await catalog.resolve_package(session, proxy, "yaml")
        with pytest.raises(NotFound):
            await catalog.resolve_package(session, proxy, "generic:yaml")
        assert [p.format for p in await catalog.list_packages(session, proxy, fmt="npm")] == [
            "npm"
        ]


async def test_resumable_upload_to_a_format_reference(client: httpx.AsyncClient) -> None:
    """A resumable upload names its package as the REST paths do; a
    reference longer than the column is refused, not a server error."""
    assert (await client.post(f"{API}/projects", json={"name": "p"})).status_code == 201
    assert (await client.post(PKGS, json={"name": "yaml", "format": "npm"})).status_code == 201
    body = {"project": "p", "version": "1.0", "filename": "a.tgz"}
    long = await client.post(f"{API}/uploads", json={**body, "package": "npm:" + "x" * 212})
    assert long.status_code == 400, long.text
    r = await client.post(f"{API}/uploads", json={**body, "package": "npm:yaml"})
    assert r.status_code == 201, r.text
    upload = f"{API}/uploads/{r.json()['id']}"
    patch = await client.patch(upload, content=b"tgz", headers={"Upload-Offset": "0"})
    assert patch.status_code in (200, 204), patch.text
    sha = hashlib.sha256(b"tgz").hexdigest()
    done = await client.post(f"{upload}/complete", json={"sha256": sha})
    assert done.status_code in (200, 201), done.text
    versions = await client.get(f"{PKGS}/npm:yaml/versions")
    assert [v["version"] for v in versions.json()] == ["1.0"]
