"""Hosted Python packages through the protocol endpoints, in process:
twine's upload form, the simple API (HTML and JSON), PEP 658 sidecars,
yanking, redirects, conditional requests, composition with the proxy, and a
permission matrix of the protocol routes on a private project."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from orchard.protocols.pypi import proxy
from orchard.protocols.pypi.model import DistFile, ProjectPage
from tests.pypi_support import make_sdist, make_wheel, upload_form
from tests.support import add_member, basic, make_project, make_token, make_user

PIP_ACCEPT = ("application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; "
              "q=0.1, text/html; q=0.01")
JSON_V1 = "application/vnd.pypi.simple.v1+json"
HTML = {"Accept": "text/html"}


async def _project(client: httpx.AsyncClient, name: str, **kw: Any) -> None:
    r = await client.post("/api/v1/projects", json={"name": name, **kw})
    assert r.status_code == 201, r.text


async def _upload(client: httpx.AsyncClient, project: str, dist: tuple[str, bytes, bytes],
                  name: str, version: str, **extra: str) -> httpx.Response:
    filename, content, _ = dist
    return await client.post(f"/pypi/{project}/", **upload_form(filename, content, name,
                                                                  version, **extra))


@pytest.fixture
async def hosted(client: httpx.AsyncClient) -> dict[str, Any]:
    """Project ``team`` with Demo.Pkg 1.0 (wheel + sdist) uploaded."""
    await _project(client, "team", upstream=False)
    wheel = make_wheel("Demo.Pkg", "1.0", requires_python=">=3.8,<4",
                       requires_dist=("requests>=2", "rich; extra == 'cli'"))
    sdist = make_sdist("Demo.Pkg", "1.0", requires_python=">=3.8,<4")
    for dist in (wheel, sdist):
        r = await _upload(client, "team", dist, "Demo.Pkg", "1.0")
        assert r.status_code == 200, r.text
    return {"wheel": wheel, "sdist": sdist}


async def test_html_page(client: httpx.AsyncClient, hosted: dict[str, Any]) -> None:
    request = client.build_request("GET", "/pypi/team/simple/demo-pkg/")
    del request.headers["accept"]  # no Accept at all: HTML
    r = await client.send(request)
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    assert r.headers["vary"] == "Accept"
    wheel_name, wheel, meta = hosted["wheel"]
    anchor = next(line for line in r.text.splitlines() if f">{wheel_name}</a>" in line)
    sha = hashlib.sha256(wheel).hexdigest()
    assert f'href="http://testserver/pypi/team/files/demo-pkg/1.0/{wheel_name}#sha256={sha}"' \
        in anchor
    assert 'data-requires-python="&gt;=3.8,&lt;4"' in anchor
    meta_sha = hashlib.sha256(meta).hexdigest()
    assert f'data-core-metadata="sha256={meta_sha}"' in anchor
    assert f'data-dist-info-metadata="sha256={meta_sha}"' in anchor
    assert "data-yanked" not in anchor
    assert ".metadata<" not in r.text  # sidecars are not listed as files
    assert r.text.count("<a ") == 2


async def test_json_page(client: httpx.AsyncClient, hosted: dict[str, Any]) -> None:
    r = await client.get("/pypi/team/simple/demo-pkg/", headers={"Accept": PIP_ACCEPT})
    assert r.headers["content-type"] == JSON_V1
    doc = r.json()
    assert doc["meta"] == {"api-version": "1.1"}
    assert doc["name"] == "demo-pkg"
    assert doc["versions"] == ["1.0"]
    files = {f["filename"]: f for f in doc["files"]}
    wheel_name, wheel, meta = hosted["wheel"]
    sdist_name, _sdist, sdist_meta = hosted["sdist"]
    w = files[wheel_name]
    assert w["hashes"] == {"sha256": hashlib.sha256(wheel).hexdigest()}
    assert w["size"] == len(wheel)
    assert w["requires-python"] == ">=3.8,<4"
    assert w["core-metadata"] == {"sha256": hashlib.sha256(meta).hexdigest()}
    assert "dist-info-metadata" not in w
    assert w["yanked"] is False
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", w["upload-time"])
    assert files[sdist_name]["core-metadata"] == {
        "sha256": hashlib.sha256(sdist_meta).hexdigest()}


async def test_sidecar_and_file_downloads(client: httpx.AsyncClient,
                                          hosted: dict[str, Any]) -> None:
    wheel_name, wheel, meta = hosted["wheel"]
    base = f"/pypi/team/files/demo-pkg/1.0/{wheel_name}"
    r = await client.get(base + ".metadata")
    assert r.status_code == 200 and r.content == meta
    r = await client.get(base)
    assert r.content == wheel
    assert r.headers["etag"] == f'"{hashlib.sha256(wheel).hexdigest()}"'
    r = await client.get(base, headers={"Range": "bytes=0-3"})
    assert r.status_code == 206 and r.content == wheel[:4]
    r = await client.head(base)
    assert r.headers["content-length"] == str(len(wheel))
    assert r.headers["accept-ranges"] == "bytes"
    assert (await client.get(base, headers={"If-None-Match": r.headers["etag"]})
            ).status_code == 304


async def test_dependencies_are_recorded(client: httpx.AsyncClient,
                                         hosted: dict[str, Any]) -> None:
    sha = hashlib.sha256(hosted["wheel"][1]).hexdigest()
    deps = (await client.get(f"/api/v1/artifacts/{sha}")).json()["dependencies"]
    assert {(d["name"], d["kind"]) for d in deps} == {("requests", "runtime"),
                                                     ("rich", "optional")}
    assert all(d["format"] == "pypi" for d in deps)
    # The same bytes again: success, and no second set of rows.
    r = await _upload(client, "team", hosted["wheel"], "Demo.Pkg", "1.0")
    assert r.status_code == 200
    assert len((await client.get(f"/api/v1/artifacts/{sha}")).json()["dependencies"]) == 2


async def test_existing_file_with_other_bytes_is_409(client: httpx.AsyncClient,
                                                     hosted: dict[str, Any]) -> None:
    other = make_wheel("Demo.Pkg", "1.0", requires_python=">=3.9")
    assert other[0] == hosted["wheel"][0] and other[1] != hosted["wheel"][1]
    r = await _upload(client, "team", other, "Demo.Pkg", "1.0")
    assert r.status_code == 409
    assert "already exists" in r.text


@pytest.mark.parametrize(
    ("dist", "form_name", "form_version", "extra", "message"),
    [
        (make_wheel("demo", "1.0"), "other", "1.0", {}, "is for project"),
        (make_wheel("demo", "1.0"), "demo", "2.0", {}, "is for version"),
        (make_wheel("demo", "1.0", meta=b"Metadata-Version: 2.1\nName: evil\nVersion: 1.0\n\n"),
         "demo", "1.0", {}, "names project"),
        (make_wheel("demo", "1.0", meta=b"Metadata-Version: 2.1\nName: demo\nVersion: 3\n\n"),
         "demo", "1.0", {}, "says version"),
        (("demo-1.0.exe", b"MZ", b""), "demo", "1.0", {}, "only wheels"),
        (("demo-1.0-py3-none-any.whl", b"not a zip", b""), "demo", "1.0", {},
         "not a valid archive"),
        (make_wheel("demo", "1.0"), "demo", "1.0", {"sha256_digest": "0" * 64},
         "sha256 digest mismatch"),
        (make_wheel("demo", "1.0"), "demo", "1.0", {"md5_digest": "0" * 32},
         "md5 digest mismatch"),
        (make_wheel("demo", "1.0"), "demo", "1.0", {"blake2_256_digest": "0" * 64},
         "blake2_256 digest mismatch"),
        (make_wheel("demo", "1.0"), "demo", "1.0", {":action": "submit"}, ":action"),
        (make_wheel("demo", "1.0"), "demo", "1.0", {"filetype": "sdist"}, "filetype"),
    ],
)
async def test_bad_uploads_are_400_and_store_nothing(
    client: httpx.AsyncClient, dist: tuple[str, bytes, bytes], form_name: str,
    form_version: str, extra: dict[str, str], message: str,
) -> None:
    await _project(client, "bad", upstream=False)
    r = await _upload(client, "bad", dist, form_name, form_version, **extra)
    assert r.status_code == 400, r.text
    assert message in r.text
    assert (await client.get("/api/v1/project/bad/packages")).json() == []
    stats = (await client.get("/api/v1/stats/storage")).json()
    assert stats["artifacts"] == 0, stats


async def test_upload_without_trailing_slash_is_not_redirected(
        client: httpx.AsyncClient) -> None:
    await _project(client, "noslash", upstream=False)
    filename, content, _ = make_wheel("x", "0.1")
    r = await client.post("/pypi/noslash", **upload_form(filename, content, "x", "0.1"))
    assert r.status_code == 200, r.text


async def test_pypi_package_beside_a_generic_one_of_the_same_name(
        client: httpx.AsyncClient) -> None:
    """A package is (project, name, format): twine's ``demo`` is a second
    package beside the generic ``demo``, each with its own versions; the bare
    name is ambiguous, ``format:name`` names each."""
    await _project(client, "mixed", upstream=False)
    put = await client.put("/api/v1/project/mixed/packages/demo/versions/1.0/files/a.bin",
                           content=b"x")
    assert put.status_code == 201
    r = await _upload(client, "mixed", make_wheel("demo", "2.0"), "demo", "2.0")
    assert r.status_code == 200, r.text
    base = "/api/v1/project/mixed/packages"
    bare = await client.get(f"{base}/demo")
    assert bare.status_code == 409 and bare.json()["error"]["code"] == "ambiguous"
    assert "generic:demo" in bare.text and "pypi:demo" in bare.text
    for ref, versions in (("generic:demo", ["1.0"]), ("pypi:demo", ["2.0"])):
        r = await client.get(f"{base}/{ref}/versions")
        assert [v["version"] for v in r.json()] == versions, ref
    page = await client.get("/pypi/mixed/simple/demo/")
    assert "demo-2.0-py3-none-any.whl" in page.text and "a.bin" not in page.text


async def test_redirects(client: httpx.AsyncClient, hosted: dict[str, Any]) -> None:
    cases = {
        "/pypi/team/simple/Demo_Pkg/": "/pypi/team/simple/demo-pkg/",
        "/pypi/team/simple/Demo.Pkg": "/pypi/team/simple/demo-pkg/",
        "/pypi/team/simple/demo-pkg": "/pypi/team/simple/demo-pkg/",
        "/pypi/team/simple": "/pypi/team/simple/",
        "/pypi/simple": "/pypi/simple/",
        "/pypi/simple/Foo_Bar": "/pypi/simple/foo-bar/",
    }
    for path, target in cases.items():
        r = await client.get(path)
        assert r.status_code == 301, path
        assert r.headers["location"] == target, path


async def test_negotiation_etag_and_406(client: httpx.AsyncClient,
                                        hosted: dict[str, Any]) -> None:
    url = "/pypi/team/simple/demo-pkg/"
    uv = ("application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, "
          "text/html;q=0.01")
    assert (await client.get(url, headers={"Accept": uv})).headers["content-type"] == JSON_V1
    r = await client.get(url, headers={"Accept": "application/vnd.pypi.simple.v1+html"})
    assert r.headers["content-type"] == "application/vnd.pypi.simple.v1+html"
    r = await client.get(url, headers={"Accept": "application/json"})
    assert r.status_code == 406
    r = await client.get(url, headers={"Accept": PIP_ACCEPT})
    etag = r.headers["etag"]
    again = await client.get(url, headers={"Accept": PIP_ACCEPT, "If-None-Match": etag})
    assert again.status_code == 304 and again.headers["etag"] == etag
    html = await client.get(url, headers={**HTML, "If-None-Match": etag})
    assert html.status_code == 200  # another representation, another tag
    head = await client.head(url, headers={"Accept": PIP_ACCEPT})
    assert head.status_code == 200 and head.headers["etag"] == etag
    assert head.headers["content-type"] == JSON_V1


async def test_project_list(client: httpx.AsyncClient, hosted: dict[str, Any]) -> None:
    r = await client.get("/pypi/team/simple/", headers=HTML)
    assert '<a href="demo-pkg/">Demo.Pkg</a>' in r.text
    r = await client.get("/pypi/team/simple/", headers={"Accept": JSON_V1})
    assert r.json() == {"meta": {"api-version": "1.1"}, "projects": [{"name": "Demo.Pkg"}]}
    assert (await client.get("/pypi/simple/")).status_code == 200


async def test_yank_and_unyank_show_at_once(client: httpx.AsyncClient,
                                            hosted: dict[str, Any]) -> None:
    version = "/api/v1/project/team/packages/demo-pkg/versions/1.0"
    r = await client.patch(version, json={"yanked": True, "yank_reason": "broken <build>"})
    assert r.status_code == 200, r.text
    page = await client.get("/pypi/team/simple/demo-pkg/", headers=HTML)
    assert page.text.count('data-yanked="broken &lt;build&gt;"') == 2
    doc = (await client.get("/pypi/team/simple/demo-pkg/", headers={"Accept": JSON_V1})).json()
    assert all(f["yanked"] == "broken <build>" for f in doc["files"])
    await client.patch(version, json={"yanked": False, "yank_reason": ""})
    assert "data-yanked" not in (await client.get("/pypi/team/simple/demo-pkg/",
                                                  headers=HTML)).text


async def test_delete_version_empties_the_page(client: httpx.AsyncClient,
                                               hosted: dict[str, Any]) -> None:
    r = await client.delete("/api/v1/project/team/packages/demo-pkg/versions/1.0")
    assert r.status_code in (200, 204)
    doc = (await client.get("/pypi/team/simple/demo-pkg/", headers={"Accept": JSON_V1})).json()
    assert doc["files"] == [] and doc["versions"] == []


def _upstream(name: str) -> ProjectPage:
    return ProjectPage(name=name, stale=True, files=[DistFile(
        filename=f"{name}-9.9-py3-none-any.whl", url="http://testserver/pypi/x/upstream/f.whl",
        version="9.9", hashes={"sha256": "a" * 64}, size=3)])


async def test_hosted_names_never_fall_through(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Dependency confusion: a hosted name is served from the project only."""
    asked: list[str] = []

    async def fake_page(ctx: Any, project: Any, name: str, base: str) -> ProjectPage:
        asked.append(f"{project.name}:{name}")
        return _upstream(name)

    monkeypatch.setattr(proxy, "upstream_page", fake_page)
    await _project(client, "mirror", upstream=True)
    await _project(client, "closed", upstream=False)
    assert (await _upload(client, "mirror", make_wheel("internal", "1.0"), "internal",
                          "1.0")).status_code == 200
    page = await client.get("/pypi/mirror/simple/internal/", headers=HTML)
    assert "9.9" not in page.text and "internal-1.0-py3-none-any.whl" in page.text
    assert asked == []
    public = await client.get("/pypi/mirror/simple/public-lib/", headers=HTML)
    assert "public-lib-9.9" in public.text
    assert public.headers["x-orchard-stale"] == "1"
    assert asked == ["mirror:public-lib"]
    assert (await client.get("/pypi/closed/simple/public-lib/")).status_code == 404
    assert (await client.get("/pypi/simple/public-lib/")).status_code == 200
    assert asked == ["mirror:public-lib", "proxy:public-lib"]


async def test_paths_the_proxy_does_not_own_are_404(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def nothing(*args: Any, **kwargs: Any) -> None:
        return None

    monkeypatch.setattr(proxy, "upstream_page", nothing)
    monkeypatch.setattr(proxy, "upstream_file", nothing)
    await _project(client, "plain")
    assert (await client.get("/pypi/plain/upstream/whatever.whl")).status_code == 404
    assert (await client.get("/pypi/plain/simple/nothing-here/")).status_code == 404


# --- permissions of the protocol routes on a private project ---------------------------------

CALLERS = ("anon", "other", "reader", "writer", "readtok")
READ = {"anon": 404, "other": 404, "reader": 200, "writer": 200, "readtok": 200}
WRITE = {"anon": 404, "other": 404, "reader": 403, "writer": 200, "readtok": 403}


async def test_protocol_route_permissions(app: FastAPI, client: httpx.AsyncClient,
                                          anon_client: httpx.AsyncClient) -> None:
    await make_project(app, "secret", public=False)
    for user, role in (("reader", "read"), ("writer", "write"), ("other", None)):
        await make_user(app, user)
        if role:
            await add_member(app, "secret", user, role)
    auth = {
        "anon": {},
        "other": basic("__token__", await make_token(app, "other")),
        "reader": basic("__token__", await make_token(app, "reader")),
        "writer": basic("__token__", await make_token(app, "writer")),
        "readtok": basic("__token__", await make_token(app, "writer", scope="read")),
    }
    wheel = make_wheel("hidden", "1.0")
    assert (await _upload(client, "secret", wheel, "hidden", "1.0")).status_code == 200
    base = f"/pypi/secret/files/hidden/1.0/{wheel[0]}"
    reads = ["/pypi/secret/simple/", "/pypi/secret/simple/hidden/", base, base + ".metadata"]
    failures = []
    for caller in CALLERS:
        for path in reads:
            for method in ("GET", "HEAD"):
                r = await anon_client.request(method, path, headers=auth[caller])
                if r.status_code != READ[caller]:
                    failures.append(f"{method} {path} as {caller}: {r.status_code}")
        for n, path in enumerate(("/pypi/secret/", "/pypi/secret")):
            new = make_wheel("hidden", f"2.{n}.{CALLERS.index(caller)}")
            form = upload_form(new[0], new[1], "hidden", new[0].split("-")[1])
            r = await anon_client.post(path, headers=auth[caller], **form)
            if r.status_code != WRITE[caller]:
                failures.append(f"POST {path} as {caller}: {r.status_code} {r.text[:80]}")
    assert not failures, "\n".join(failures)
    # Redirects do not reveal a private project either.
    assert (await anon_client.get("/pypi/secret/simple/Hidden/")).status_code == 404


async def test_anonymous_upload_to_a_public_project_asks_for_credentials(
        client: httpx.AsyncClient, anon_client: httpx.AsyncClient) -> None:
    await _project(client, "open")
    filename, content, _ = make_wheel("x", "1.0")
    r = await anon_client.post("/pypi/open/", **upload_form(filename, content, "x", "1.0"))
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Basic")
    r = await anon_client.post("/pypi/open/", headers=basic("__token__", "orch_wrong"),
                               **upload_form(filename, content, "x", "1.0"))
    assert r.status_code == 401


async def test_links_follow_the_scheme_a_trusted_proxy_forwards(
    client: httpx.AsyncClient, hosted: dict[str, Any]
) -> None:
    # The test client's address is 127.0.0.1, a trusted proxy by default
    # (ORCHARD_FORWARDED_ALLOW_IPS): TLS ends at the proxy, links say https.
    r = await client.get("/pypi/team/simple/demo-pkg/",
                         headers={**HTML, "X-Forwarded-Proto": "https"})
    assert 'href="https://testserver/pypi/team/files/demo-pkg/1.0/' in r.text
    plain = await client.get("/pypi/team/simple/demo-pkg/", headers=HTML)
    assert 'href="http://testserver/pypi/team/files/demo-pkg/1.0/' in plain.text
