"""The REST catalog as a user sees it: projects, packages, versions, files,
deduplication with exact reference counts, immutability, search and audit.

Runs on the stack chosen by ``ORCHARD_TEST_STACK`` (embedded or production).
"""

from __future__ import annotations

import hashlib
from typing import Any

import httpx

API = "/api/v1"


def file_path(project: str, package: str, version: str, filename: str) -> str:
    return f"{API}/project/{project}/packages/{package}/versions/{version}/files/{filename}"


async def upload(
    client: httpx.AsyncClient,
    project: str,
    package: str,
    version: str,
    filename: str,
    data: bytes,
    expect: int = 201,
) -> dict[str, Any]:
    r = await client.put(file_path(project, package, version, filename), content=data)
    assert r.status_code == expect, r.text
    body: dict[str, Any] = r.json()
    return body


async def create_project(client: httpx.AsyncClient, name: str, **fields: Any) -> dict[str, Any]:
    r = await client.post(f"{API}/projects", json={"name": name, **fields})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def artifact(client: httpx.AsyncClient, sha256: str) -> dict[str, Any]:
    r = await client.get(f"{API}/artifacts/{sha256}")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def stats(client: httpx.AsyncClient) -> dict[str, int]:
    r = await client.get(f"{API}/stats/storage")
    assert r.status_code == 200, r.text
    body: dict[str, int] = r.json()
    return body


def assert_error(r: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """The response is ``status`` with the JSON error shape."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    error = r.json()["error"]
    assert set(error) == {"code", "message"}
    assert isinstance(error["message"], str) and error["message"]
    if code is not None:
        assert error["code"] == code
    return dict(error)


def refs(detail: dict[str, Any]) -> set[tuple[str, str, str, str]]:
    return {(r["project"], r["package"], r["version"], r["filename"]) for r in detail["references"]}


# --- projects --------------------------------------------------------------------------------


async def test_project_crud(client: httpx.AsyncClient) -> None:
    created = await create_project(
        client, "alpha-one", description="first", is_public=False, upstream=False
    )
    assert created["name"] == "alpha-one"
    assert created["description"] == "first"
    assert created["is_public"] is False
    assert created["upstream"] is False
    assert created["builtin"] is False
    assert "created_at" in created and "updated_at" in created

    defaults = await create_project(client, "alpha_two")
    assert defaults["description"] == ""
    assert defaults["is_public"] is True
    assert defaults["upstream"] is True  # upstream fall-through is on by default
    await create_project(client, "beta")

    dup = await client.post(f"{API}/projects", json={"name": "alpha-one", "description": "x"})
    assert_error(dup, 409, "conflict")
    # The duplicate attempt changed nothing.
    got = await client.get(f"{API}/project/alpha-one")
    assert got.status_code == 200
    assert got.json()["description"] == "first"

    listed = await client.get(f"{API}/projects")
    assert listed.status_code == 200
    all_names = [p["name"] for p in listed.json()]
    assert {"alpha-one", "alpha_two", "beta", "proxy"} <= set(all_names)

    filtered = await client.get(f"{API}/projects", params={"q": "ALPHA"})
    assert sorted(p["name"] for p in filtered.json()) == ["alpha-one", "alpha_two"]
    # LIKE wildcards in q are literal characters, not patterns.
    underscore = await client.get(f"{API}/projects", params={"q": "_"})
    assert [p["name"] for p in underscore.json()] == ["alpha_two"]
    percent = await client.get(f"{API}/projects", params={"q": "%"})
    assert percent.json() == []

    patched = await client.patch(
        f"{API}/project/alpha-one", json={"description": "changed", "is_public": True}
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["description"] == "changed"
    assert patched.json()["is_public"] is True
    assert patched.json()["upstream"] is False  # untouched field kept
    again = (await client.get(f"{API}/project/alpha-one")).json()
    assert again["description"] == "changed"
    assert again["is_public"] is True

    deleted = await client.delete(f"{API}/project/alpha-one")
    assert deleted.status_code == 204
    assert deleted.content == b""
    assert_error(await client.get(f"{API}/project/alpha-one"), 404, "not_found")
    assert_error(await client.delete(f"{API}/project/alpha-one"), 404, "not_found")
    names = [p["name"] for p in (await client.get(f"{API}/projects")).json()]
    assert "alpha-one" not in names
    assert "alpha_two" in names


async def test_builtin_proxy_project_is_read_only(client: httpx.AsyncClient) -> None:
    proxy = await client.get(f"{API}/project/proxy")
    assert proxy.status_code == 200
    before = proxy.json()
    assert before["builtin"] is True
    assert before["upstream"] is True
    before_stats = await stats(client)

    assert_error(
        await client.patch(f"{API}/project/proxy", json={"description": "mine"}), 403, "forbidden"
    )
    assert_error(await client.delete(f"{API}/project/proxy"), 403, "forbidden")
    assert_error(
        await client.put(file_path("proxy", "pkg", "1.0", "f.bin"), content=b"data"),
        403,
        "forbidden",
    )
    assert_error(
        await client.post(f"{API}/project/proxy/packages", json={"name": "pkg"}), 403, "forbidden"
    )
    dup = await client.post(f"{API}/projects", json={"name": "proxy"})
    assert_error(dup, 409, "conflict")

    after = await client.get(f"{API}/project/proxy")
    assert after.status_code == 200
    assert after.json() == before
    assert (await client.get(f"{API}/project/proxy/packages")).json() == []
    assert await stats(client) == before_stats


# --- packages --------------------------------------------------------------------------------


async def test_package_crud_and_formats(client: httpx.AsyncClient) -> None:
    await create_project(client, "p")
    base = f"{API}/project/p/packages"
    for name, fmt in [
        ("gen-tool", "generic"),
        ("Foo_Bar", "pypi"),
        ("left-pad", "npm"),
        ("example.com/gomod", "go"),
    ]:
        r = await client.post(base, json={"name": name, "format": fmt, "description": fmt})
        assert r.status_code == 201, r.text
        assert r.json()["format"] == fmt
        assert r.json()["display_name"] == name
        assert r.json()["description"] == fmt

    # pypi names are normalised (PEP 503); npm names are case-sensitive, and
    # new ones are lower-case (legacy mixed-case names exist only upstream).
    assert (await client.get(f"{base}/foo-bar")).json()["name"] == "foo-bar"
    assert (await client.get(f"{base}/left-pad")).json()["format"] == "npm"
    assert_error(await client.get(f"{base}/Left-Pad"), 404)
    capital = await client.post(base, json={"name": "Left-Pad", "format": "npm"})
    assert_error(capital, 400, "invalid_input")
    assert "capital letters" in capital.json()["error"]["message"]
    # Each format's own rules: a Go module path needs a host with a dot.
    assert_error(await client.post(base, json={"name": "gomod", "format": "go"}), 400)

    bad = await client.post(base, json={"name": "x", "format": "maven"})
    assert bad.status_code in (400, 422)
    assert_error(bad, bad.status_code)
    assert_error(await client.get(f"{base}/x"), 404, "not_found")

    listed = await client.get(base)
    assert listed.status_code == 200
    assert sorted((p["name"], p["format"]) for p in listed.json()) == [
        ("example.com/gomod", "go"),
        ("foo-bar", "pypi"),
        ("gen-tool", "generic"),
        ("left-pad", "npm"),
    ]

    # Any spelling that normalises to the same pypi name finds the package...
    for spelling in ("foo-bar", "Foo_Bar", "FOO.bar", "foo__bar", "Foo-_.Bar"):
        got = await client.get(f"{base}/{spelling}")
        assert got.status_code == 200, (spelling, got.text)
        assert got.json()["name"] == "foo-bar"
        assert got.json()["display_name"] == "Foo_Bar"
    # ... and is a duplicate of it.
    assert_error(await client.post(base, json={"name": "foo.bar", "format": "pypi"}), 409)
    # A generic package is not normalised: the exact name only.
    assert_error(await client.get(f"{base}/Gen_Tool"), 404)
    assert_error(await client.post(base, json={"name": "gen-tool"}), 409, "conflict")

    # Uploading under another spelling of the pypi name adds to the same package.
    up = await upload(client, "p", "Foo.Bar", "1.0", "foo_bar-1.0.tar.gz", b"sdist")
    assert up["package"] == "foo-bar"
    assert len((await client.get(base)).json()) == 4
    versions = await client.get(f"{base}/FOO_BAR/versions")
    assert [v["version"] for v in versions.json()] == ["1.0"]

    deleted = await client.delete(f"{base}/Foo_Bar")
    assert deleted.status_code == 204
    assert_error(await client.get(f"{base}/foo-bar"), 404, "not_found")
    assert sorted(p["name"] for p in (await client.get(base)).json()) == [
        "example.com/gomod",
        "gen-tool",
        "left-pad",
    ]
    assert_error(await client.delete(f"{base}/foo-bar"), 404)


# --- versions --------------------------------------------------------------------------------


async def test_versions_lifecycle(client: httpx.AsyncClient) -> None:
    await create_project(client, "p")
    assert_error(await client.get(f"{API}/project/p/packages/tool"), 404)
    payloads = {v: f"tool {v}".encode() * 10 for v in ("1.0", "1.1", "2.0")}
    for v, data in payloads.items():
        await upload(client, "p", "tool", v, f"tool-{v}.bin", data)
    await upload(client, "p", "tool", "2.0", "README.txt", b"read me")

    # The upload created the package (generic) and its versions.
    pkg = await client.get(f"{API}/project/p/packages/tool")
    assert pkg.status_code == 200
    assert pkg.json()["format"] == "generic"

    listed = await client.get(f"{API}/project/p/packages/tool/versions")
    assert listed.status_code == 200
    assert [v["version"] for v in listed.json()] == ["2.0", "1.1", "1.0"]  # newest first
    assert all(v["yanked"] is False and v["deprecated"] == "" for v in listed.json())

    got = await client.get(f"{API}/project/p/packages/tool/versions/2.0")
    assert got.status_code == 200
    files = {f["filename"]: f for f in got.json()["files"]}
    assert set(files) == {"tool-2.0.bin", "README.txt"}
    for filename, expected in (("tool-2.0.bin", payloads["2.0"]), ("README.txt", b"read me")):
        f = files[filename]
        assert f["size"] == len(expected)
        assert f["sha256"] == hashlib.sha256(expected).hexdigest()
        download = await client.get(f["url"])  # absolute URL on this server
        assert download.status_code == 200
        assert download.content == expected
    assert files["README.txt"]["content_type"] == "text/plain"

    patched = await client.patch(
        f"{API}/project/p/packages/tool/versions/1.1",
        json={"yanked": True, "yank_reason": "broken build", "deprecated": "use 2.0"},
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["yanked"] is True
    assert patched.json()["yank_reason"] == "broken build"
    assert patched.json()["deprecated"] == "use 2.0"
    v11 = (await client.get(f"{API}/project/p/packages/tool/versions/1.1")).json()
    assert (v11["yanked"], v11["yank_reason"], v11["deprecated"]) == (
        True,
        "broken build",
        "use 2.0",
    )
    # Flags never touch the files: a yanked version still downloads.
    assert [f["filename"] for f in v11["files"]] == ["tool-1.1.bin"]
    assert (await client.get(v11["files"][0]["url"])).content == payloads["1.1"]
    unyanked = await client.patch(
        f"{API}/project/p/packages/tool/versions/1.1", json={"yanked": False}
    )
    assert unyanked.json()["yanked"] is False
    assert unyanked.json()["deprecated"] == "use 2.0"

    deleted = await client.delete(f"{API}/project/p/packages/tool/versions/1.0")
    assert deleted.status_code == 204
    assert_error(await client.get(f"{API}/project/p/packages/tool/versions/1.0"), 404)
    assert_error(await client.get(file_path("p", "tool", "1.0", "tool-1.0.bin")), 404)
    listed = await client.get(f"{API}/project/p/packages/tool/versions")
    assert [v["version"] for v in listed.json()] == ["2.0", "1.1"]


async def test_upload_response_fields(client: httpx.AsyncClient) -> None:
    await create_project(client, "p")
    data = b"orchard checksums \x00\xff" * 100
    first = await upload(client, "p", "pkg", "1.0", "data.bin", data)
    assert first["sha256"] == hashlib.sha256(data).hexdigest()
    assert first["md5"] == hashlib.md5(data).hexdigest()
    assert first["sha1"] == hashlib.sha1(data).hexdigest()
    assert first["sha512"] == hashlib.sha512(data).hexdigest()
    assert first["size"] == len(data)
    assert first["created"] is True
    # Deduplication stays internal: the bytes may be in a project the uploader cannot read.
    assert "ref_count" not in first
    assert "deduplicated" not in first
    assert (first["project"], first["package"], first["version"], first["filename"]) == (
        "p",
        "pkg",
        "1.0",
        "data.bin",
    )
    assert (await client.get(first["url"])).content == data

    second = await upload(client, "p", "pkg", "1.1", "data.bin", data)
    assert second.keys() == first.keys()
    assert second["created"] is True
    assert second["sha256"] == first["sha256"]

    detail = await artifact(client, first["sha256"])
    for key in ("sha256", "size", "md5", "sha1", "sha512"):
        assert detail[key] == first[key]
    assert detail["ref_count"] == 2


# --- deduplication and reference counts ------------------------------------------------------


async def test_dedup_and_exact_ref_count_through_every_delete(client: httpx.AsyncClient) -> None:
    shared = b"the same bytes everywhere\n" * 50
    other = b"something else"
    sha = hashlib.sha256(shared).hexdigest()
    other_sha = hashlib.sha256(other).hexdigest()
    await create_project(client, "p1")
    await create_project(client, "p2")
    baseline = await stats(client)

    places = [
        ("p1", "a", "1", "f.bin"),
        ("p1", "a", "2", "f.bin"),
        ("p1", "a", "2", "copy.bin"),  # same version, another filename
        ("p1", "b", "1", "f.bin"),
        ("p2", "a", "1", "f.bin"),
        ("p2", "c", "9", "renamed.dat"),
    ]
    for n, place in enumerate(places, start=1):
        body = await upload(client, *place, shared)
        assert body["created"] is True
        detail = await artifact(client, sha)
        assert detail["ref_count"] == n
        assert refs(detail) == set(places[:n])
        s = await stats(client)
        assert s["artifacts"] == baseline["artifacts"] + 1  # stored once
        assert s["stored_bytes"] == baseline["stored_bytes"] + len(shared)
        assert s["files"] == baseline["files"] + n
        assert s["logical_bytes"] == baseline["logical_bytes"] + n * len(shared)
        assert s["saved_bytes"] == (n - 1) * len(shared)

    # A different artifact beside it, counted on its own.
    await upload(client, "p1", "a", "2", "other.txt", other)
    assert (await artifact(client, other_sha))["ref_count"] == 1
    s = await stats(client)
    assert s["artifacts"] == baseline["artifacts"] + 2
    assert s["stored_bytes"] == baseline["stored_bytes"] + len(shared) + len(other)

    async def expect(remaining: list[tuple[str, str, str, str]], other_count: int) -> None:
        detail = await artifact(client, sha)
        assert detail["ref_count"] == len(remaining)
        assert refs(detail) == set(remaining)
        assert (await artifact(client, other_sha))["ref_count"] == other_count
        s = await stats(client)
        assert s["artifacts"] == baseline["artifacts"] + 2  # nothing is freed before gc
        assert s["files"] == baseline["files"] + len(remaining) + other_count
        assert s["unreferenced_artifacts"] == (len(remaining) == 0) + (other_count == 0)

    # Deleting a version drops its two files (and the other artifact's one).
    r = await client.delete(f"{API}/project/p1/packages/a/versions/2")
    assert r.status_code == 204
    remaining = [places[0], places[3], places[4], places[5]]
    await expect(remaining, 0)

    # Deleting a package drops the files of all its versions.
    r = await client.delete(f"{API}/project/p1/packages/b")
    assert r.status_code == 204
    remaining = [places[0], places[4], places[5]]
    await expect(remaining, 0)

    # Deleting a project cascades through packages and versions.
    r = await client.delete(f"{API}/project/p2")
    assert r.status_code == 204
    remaining = [places[0]]
    await expect(remaining, 0)
    assert_error(await client.get(file_path("p2", "a", "1", "f.bin")), 404)

    # The last reference.
    r = await client.delete(f"{API}/project/p1/packages/a/versions/1")
    assert r.status_code == 204
    await expect([], 0)

    # Unreferenced, yet readable until gc collects it.
    content = await client.get(f"{API}/artifacts/{sha}/content")
    assert content.status_code == 200
    assert content.content == shared
    assert content.headers["etag"] == f'"{sha}"'
    assert (await client.get(f"{API}/artifacts/{other_sha}/content")).content == other

    # Uploading the bytes again revives the same artifact, still stored once.
    again = await upload(client, "p1", "a", "3", "f.bin", shared)
    assert again["created"] is True
    assert (await artifact(client, sha))["ref_count"] == 1
    assert (await stats(client))["artifacts"] == baseline["artifacts"] + 2


async def test_immutable_versions(client: httpx.AsyncClient) -> None:
    await create_project(client, "p")
    original = b"release 1.0 as published"
    first = await upload(client, "p", "lib", "1.0", "lib.tar.gz", original)
    before = await stats(client)

    tampered = b"release 1.0, but different"
    r = await client.put(file_path("p", "lib", "1.0", "lib.tar.gz"), content=tampered)
    error = assert_error(r, 409, "conflict")
    assert "immutable" in error["message"]
    served = await client.get(file_path("p", "lib", "1.0", "lib.tar.gz"))
    assert served.status_code == 200
    assert served.content == original
    assert_error(await client.get(f"{API}/artifacts/{hashlib.sha256(tampered).hexdigest()}"), 404)
    assert await stats(client) == before

    # The identical bytes again: idempotent, nothing counted twice.
    same = await client.put(file_path("p", "lib", "1.0", "lib.tar.gz"), content=original)
    assert same.status_code == 200, same.text
    assert same.json()["created"] is False
    assert same.json()["sha256"] == first["sha256"]
    assert (await artifact(client, first["sha256"]))["ref_count"] == 1
    assert await stats(client) == before

    # Other files may still be added to the version.
    await upload(client, "p", "lib", "1.0", "lib-1.0-py3-none-any.whl", b"wheel")
    uploads = await client.get(f"{API}/audit", params={"action": "file.upload"})
    targets = [e["target"] for e in uploads.json()]
    assert targets.count("p/lib/1.0/lib.tar.gz") == 1


# --- search and audit ------------------------------------------------------------------------


async def test_search_across_projects(client: httpx.AsyncClient) -> None:
    await create_project(client, "team-a")
    await create_project(client, "team-b")
    await upload(client, "team-a", "libfoo", "1.0", "x.bin", b"1")
    await upload(client, "team-a", "libfoo", "1.2", "x.bin", b"2")
    await upload(client, "team-b", "FooClient", "0.1", "x.bin", b"3")
    await upload(client, "team-b", "bar", "1.0", "x.bin", b"4")
    r = await client.post(
        f"{API}/project/team-b/packages", json={"name": "foo-empty", "description": "nothing yet"}
    )
    assert r.status_code == 201

    found = await client.get(f"{API}/search", params={"q": "foo"})
    assert found.status_code == 200
    hits = {(h["project"], h["package"]): h for h in found.json()}
    assert set(hits) == {("team-a", "libfoo"), ("team-b", "FooClient"), ("team-b", "foo-empty")}
    assert hits[("team-a", "libfoo")]["latest_version"] == "1.2"
    assert hits[("team-b", "FooClient")]["latest_version"] == "0.1"
    assert hits[("team-b", "foo-empty")]["latest_version"] is None
    assert hits[("team-b", "foo-empty")]["description"] == "nothing yet"

    # The latest version follows deletes.
    r = await client.delete(f"{API}/project/team-a/packages/libfoo/versions/1.2")
    assert r.status_code == 204
    found = await client.get(f"{API}/search", params={"q": "LIBF"})
    assert [(h["package"], h["latest_version"]) for h in found.json()] == [("libfoo", "1.0")]

    scoped = await client.get(f"{API}/search", params={"q": "foo", "project": "team-b"})
    assert {h["package"] for h in scoped.json()} == {"FooClient", "foo-empty"}
    assert (await client.get(f"{API}/search", params={"q": "%"})).json() == []
    assert (await client.get(f"{API}/search", params={"q": "nothing-like-this"})).json() == []
    assert_error(await client.get(f"{API}/search"), 422)


async def test_audit_log(client: httpx.AsyncClient) -> None:
    await create_project(client, "audited")
    up = await upload(client, "audited", "pkg", "1.0", "a.bin", b"audit me")
    r = await client.patch(f"{API}/project/audited", json={"description": "d"})
    assert r.status_code == 200
    r = await client.patch(
        f"{API}/project/audited/packages/pkg/versions/1.0", json={"yanked": True}
    )
    assert r.status_code == 200
    r = await client.delete(f"{API}/project/audited/packages/pkg/versions/1.0")
    assert r.status_code == 204

    log = await client.get(f"{API}/audit")
    assert log.status_code == 200
    entries = log.json()
    actions = [e["action"] for e in entries]
    assert actions[:5] == [
        "version.delete",
        "version.update",
        "project.update",
        "file.upload",
        "project.create",
    ]
    ids = [e["id"] for e in entries]
    assert ids == sorted(ids, reverse=True)  # newest first
    ats = [e["at"] for e in entries]
    assert ats == sorted(ats, reverse=True)

    by_action = {e["action"]: e for e in entries}
    assert by_action["project.create"]["target"] == "audited"
    assert by_action["file.upload"]["target"] == "audited/pkg/1.0/a.bin"
    assert by_action["file.upload"]["detail"]["sha256"] == up["sha256"]
    assert by_action["file.upload"]["detail"]["size"] == len(b"audit me")
    assert by_action["version.update"]["target"] == "audited/pkg/1.0"
    assert by_action["version.update"]["detail"]["changes"] == {"yanked": True}
    assert by_action["version.delete"]["target"] == "audited/pkg/1.0"
    assert {e["actor"] for e in entries[:5]} == {"admin"}  # who did it

    only = await client.get(f"{API}/audit", params={"action": "file.upload"})
    assert [e["action"] for e in only.json()] == ["file.upload"]
    assert (await client.get(f"{API}/audit", params={"action": "no.such"})).json() == []
    limited = await client.get(f"{API}/audit", params={"limit": 2})
    assert [e["action"] for e in limited.json()] == ["version.delete", "version.update"]
    older = await client.get(f"{API}/audit", params={"before": limited.json()[-1]["id"]})
    assert [e["action"] for e in older.json()][:3] == [
        "project.update",
        "file.upload",
        "project.create",
    ]


# --- artifacts -------------------------------------------------------------------------------


async def test_unknown_or_malformed_artifact_is_404(client: httpx.AsyncClient) -> None:
    await create_project(client, "p")
    known = await upload(client, "p", "pkg", "1.0", "f.bin", b"known")
    for sha in (
        "0" * 64,  # well-formed, unknown
        known["sha256"][:-1],
        known["sha256"] + "0",
        "z" * 64,
        "not-a-hash",
        "%2e%2e",
    ):
        assert_error(await client.get(f"{API}/artifacts/{sha}"), 404, "not_found")
        assert_error(await client.get(f"{API}/artifacts/{sha}/content"), 404, "not_found")
        head = await client.head(f"{API}/artifacts/{sha}/content")
        assert head.status_code == 404
    # The known one, also spelled in upper case, is found.
    for sha in (known["sha256"], known["sha256"].upper()):
        assert (await artifact(client, sha))["sha256"] == known["sha256"]
        assert (await client.get(f"{API}/artifacts/{sha}/content")).content == b"known"
