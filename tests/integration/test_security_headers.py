"""Security headers and the serving of stored bytes (issue 15, points 1, 7, 9).

- every answer carries ``nosniff``, ``X-Frame-Options``, a ``Referrer-Policy``
  and a content security policy: the strict one, or the web UI's and the
  OpenAPI page's own;
- stored bytes go out as attachments, and active types (HTML, SVG, XML,
  JavaScript, PDF…) as ``application/octet-stream``, from every download route;
- files and pages that needed a credential are ``Cache-Control: private``;
- a Range header with a 5,000-digit number, or otherwise malformed, is a 416
  or ignored, never a 500.

The browser half of point 1 (the uploaded page's script does not run) is
tests/e2e/test_stored_xss.py.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from orchard.headers import STRICT_POLICY, UI_POLICY, secure, served_type
from orchard.settings import Settings
from tests import support
from tests.pypi_support import make_wheel, upload_form

ATTACK = b"<html><body><script>document.title = document.cookie</script></body></html>"
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>document.title = "ran"</script></svg>'
FILE = "/api/v1/project/{project}/packages/pkg/versions/1.0/files/{name}"


def assert_secure(r: httpx.Response, policy: str = STRICT_POLICY) -> None:
    assert r.headers["x-content-type-options"] == "nosniff", r.url
    assert r.headers["x-frame-options"] == "DENY", r.url
    assert r.headers["referrer-policy"] == "same-origin", r.url
    assert r.headers.get_list("content-security-policy") == [policy], r.url


def assert_inert_download(r: httpx.Response, filename: str) -> None:
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/octet-stream"
    disposition = r.headers["content-disposition"]
    assert disposition.startswith("attachment;")
    assert f'filename="{filename}"' in disposition
    assert_secure(r)


async def put(client: httpx.AsyncClient, project: str, name: str, body: bytes, kind: str) -> str:
    url = FILE.format(project=project, name=name)
    r = await client.put(url, content=body, headers={"Content-Type": kind})
    assert r.status_code == 201, r.text
    return url


@pytest.fixture
async def projects(client: httpx.AsyncClient) -> None:
    for name, public in (("open", True), ("closed", False)):
        r = await client.post("/api/v1/projects", json={"name": name, "is_public": public})
        assert r.status_code == 201, r.text


# --- point 1: headers on every answer, inert downloads ---------------------------------------


async def test_every_answer_has_the_security_headers(
    client: httpx.AsyncClient, anon_client: httpx.AsyncClient, projects: None
) -> None:
    for path in (
        "/health",
        "/api/v1/projects",
        "/api/v1/project/nowhere",  # an error
        "/api/v1/openapi.json",
        "/pypi/open/simple/",
        "/pypi/open/simple/absent/",
        "/metrics",
    ):
        for c in (client, anon_client):
            assert_secure(await c.get(path))
    r = await client.post("/api/v1/projects", json={"name": "open"})  # 409
    assert r.status_code == 409
    assert_secure(r)


async def test_stored_active_content_is_an_inert_attachment(
    client: httpx.AsyncClient, anon_client: httpx.AsyncClient, projects: None
) -> None:
    cases = (
        ("page.html", ATTACK, "text/html"),
        ("image.svg", SVG, "image/svg+xml"),
        ("feed.xml", b"<x/>", "application/xml"),
        ("tool.js", b"alert(1)", "text/javascript"),
        ("doc.pdf", b"%PDF-1.4", "application/pdf"),
        ("page.xhtml", ATTACK, "application/xhtml+xml"),
        ("odd.bin", ATTACK, "application/x-something-new"),
    )
    for name, body, kind in cases:
        for project in ("open", "closed"):
            url = await put(client, project, name, body, kind)
            assert_inert_download(await client.get(url), name)
            head = await client.head(url)
            assert head.headers["content-type"] == "application/octet-stream"
            assert_secure(head)
        sha = hashlib.sha256(body).hexdigest()
        content = f"/api/v1/artifacts/{sha}/content"
        # No filename by this route: the sha256 names the attachment.
        assert_inert_download(await client.get(content), sha)
        assert_inert_download(await anon_client.get(content), sha)
        ranged = await client.get(content, headers={"Range": "bytes=0-3"})
        assert ranged.status_code == 206
        assert ranged.headers["content-type"] == "application/octet-stream"
        assert ranged.headers["content-disposition"].startswith("attachment;")
        assert_secure(ranged)


async def test_inert_types_keep_their_type(client: httpx.AsyncClient, projects: None) -> None:
    url = await put(client, "open", "notes.txt", b"plain words", "text/plain")
    r = await client.get(url)
    assert r.headers["content-type"].startswith("text/plain")
    assert r.headers["content-disposition"].startswith("attachment;")
    assert_secure(r)


def test_served_type_allows_only_inert_types() -> None:
    for inert in ("application/zip", "application/gzip", "text/plain", "image/png"):
        assert served_type(inert) == inert
    assert served_type("Text/Plain; charset=utf-8") == "text/plain"
    for active in (
        None,
        "",
        "text/html",
        "TEXT/HTML; charset=utf-8",
        "image/svg+xml",
        "application/xml",
        "text/xml",
        "application/xhtml+xml",
        "text/javascript",
        "application/javascript",
        "application/pdf",
        "text/css",
        "multipart/x-mixed-replace",
        "application/x-shockwave-flash",
        "text/plain, text/html",
    ):
        assert served_type(active) == "application/octet-stream", active


async def test_pypi_files_are_attachments(
    client: httpx.AsyncClient, anon_client: httpx.AsyncClient, projects: None
) -> None:
    wheel_name, wheel, _ = make_wheel("demo", "1.0")
    r = await client.post("/pypi/open/", **upload_form(wheel_name, wheel, "demo", "1.0"))
    assert r.status_code == 200, r.text
    base = f"/pypi/open/files/demo/1.0/{wheel_name}"
    for c in (client, anon_client):
        for url, name in ((base, wheel_name), (base + ".metadata", wheel_name + ".metadata")):
            r = await c.get(url)
            assert r.status_code == 200
            assert r.headers["content-disposition"].startswith("attachment;")
            assert f'filename="{name}"' in r.headers["content-disposition"]
            assert_secure(r)


async def test_ui_and_docs_pages_have_their_own_policy(settings: Settings, tmp_path: Path) -> None:
    from orchard.app import create_app

    dist = tmp_path / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text("<!doctype html><title>Orchard</title>")
    (dist / "assets" / "index-abc.js").write_text("console.log(1)")
    app = create_app(settings.model_copy(update={"ui_dir": dist}))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            for path in ("/", "/projects", "/login"):
                assert_secure(await c.get(path), UI_POLICY)
            assert_secure(await c.get("/assets/index-abc.js"))  # not a page: the strict one
            docs = await c.get("/api/v1/docs")
    assert docs.status_code == 200
    policy = docs.headers["content-security-policy"]
    assert "'unsafe-inline'" not in policy.split("script-src", 1)[1].split(";", 1)[0]
    assert "frame-ancestors 'none'" in policy
    # Exactly the page's inline script (by hash) and its external script may run.
    for script in re.findall(r"<script>(.*?)</script>", docs.text, re.DOTALL):
        digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in policy
    for src in re.findall(r'<script src="([^"]+)"', docs.text):
        assert f" {src}" in policy
    assert "'self'" not in policy.split("script-src", 1)[1].split(";", 1)[0]


async def test_not_built_page_has_no_script(settings: Settings, tmp_path: Path) -> None:
    from orchard.app import create_app

    app = create_app(settings.model_copy(update={"ui_dir": tmp_path / "none"}))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            r = await c.get("/")
    assert "default-src 'none'" in r.headers["content-security-policy"]
    assert "script" not in r.headers["content-security-policy"]


# --- point 7: Cache-Control private ----------------------------------------------------------


async def test_private_and_credentialed_answers_are_private(
    app: object, client: httpx.AsyncClient, anon_client: httpx.AsyncClient, projects: None
) -> None:
    open_url = await put(client, "open", "a.bin", b"open bytes", "application/octet-stream")
    closed_url = await put(client, "closed", "a.bin", b"closed bytes", "application/octet-stream")
    public = "public, max-age=31536000, immutable"
    # Anonymous, public project: shared caches may keep it.
    assert (await anon_client.get(open_url)).headers["cache-control"] == public
    sha = hashlib.sha256(b"open bytes").hexdigest()
    content = f"/api/v1/artifacts/{sha}/content"
    assert (await anon_client.get(content)).headers["cache-control"] == public
    # With a credential, any project: private.
    for url in (open_url, closed_url, content):
        for r in (await client.get(url), await client.head(url)):
            cache = r.headers["cache-control"]
            assert cache.startswith("private") and "public" not in cache, (url, cache)
        r = await client.get(url, headers={"If-None-Match": f'"{"0" * 64}", *'})
        assert r.status_code == 304
        assert r.headers["cache-control"].startswith("private")

    # PyPI: the private project's pages and files, for a reader of it.
    wheel_name, wheel, _ = make_wheel("demo", "1.0")
    for project in ("open", "closed"):
        r = await client.post(f"/pypi/{project}/", **upload_form(wheel_name, wheel, "demo", "1.0"))
        assert r.status_code == 200, r.text
    await support.make_user(app, "reader")
    await support.add_member(app, "closed", "reader", "read")
    reader = support.bearer(await support.make_token(app, "reader", scope="read"))
    for path in (
        "/pypi/closed/simple/",
        "/pypi/closed/simple/demo/",
        f"/pypi/closed/files/demo/1.0/{wheel_name}",
        f"/pypi/closed/files/demo/1.0/{wheel_name}.metadata",
    ):
        r = await anon_client.get(path, headers=reader)
        assert r.status_code == 200, (path, r.text)
        cache = r.headers["cache-control"]
        assert cache.startswith("private") and "public" not in cache, (path, cache)
    # Any other answer to a credentialed request (authentication marks the
    # scope): private too; anonymous ones are left alone.
    assert (await client.get("/api/v1/projects")).headers["cache-control"] == "private"
    assert "cache-control" not in (await anon_client.get("/api/v1/projects")).headers
    # The public project's page, anonymously: revalidated, not private.
    r = await anon_client.get("/pypi/open/simple/demo/")
    assert r.headers["cache-control"] == "max-age=0, must-revalidate"


async def test_credentialed_scope_makes_any_answer_private() -> None:
    """Authentication marks the scope (``orchard.credentialed``); the headers
    layer then never lets ``public`` out, whatever the handler said."""
    sent: list[dict[str, object]] = []

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    cases = (
        ([(b"cache-control", b"public, max-age=60")], b"private, max-age=60"),
        (
            [(b"cache-control", b"max-age=0, must-revalidate")],
            b"private, max-age=0, must-revalidate",
        ),
        ([(b"cache-control", b"no-store")], b"no-store"),
        ([], b"private"),
    )
    for headers, expected in cases:
        for credentialed, want in ((True, expected), (False, None)):
            sent.clear()
            scope = {"type": "http", "orchard.credentialed": credentialed}
            await secure(send, scope)(
                {"type": "http.response.start", "status": 200, "headers": headers}
            )
            out = dict(sent[0]["headers"])  # type: ignore[call-overload]
            if want is None:
                assert out.get(b"cache-control") == dict(headers).get(b"cache-control")
            else:
                assert out[b"cache-control"] == want
            assert out[b"x-content-type-options"] == b"nosniff"


async def test_a_handler_policy_is_kept() -> None:
    sent: list[dict[str, object]] = []

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    start = {
        "type": "http.response.start",
        "status": 200,
        "headers": [(b"content-security-policy", b"default-src 'self'")],
    }
    await secure(send, {"type": "http"})(start)
    headers = sent[0]["headers"]
    assert [v for k, v in headers if k == b"content-security-policy"] == [  # type: ignore[attr-defined]
        b"default-src 'self'"
    ]


# --- point 9: Range ---------------------------------------------------------------------------


@pytest.fixture
async def ranged(client: httpx.AsyncClient, projects: None) -> AsyncIterator[list[str]]:
    body = bytes(range(256)) * 4
    url = await put(client, "open", "r.bin", body, "application/octet-stream")
    sha = hashlib.sha256(body).hexdigest()
    yield [url, f"/api/v1/artifacts/{sha}/content"]


async def test_huge_and_malformed_ranges_are_never_a_server_error(
    client: httpx.AsyncClient, ranged: list[str]
) -> None:
    huge = "9" * 5000
    unsatisfiable = (f"bytes={huge}-", f"bytes={huge}-{huge}", "bytes=1024-", "bytes=-0")
    clamped = {
        f"bytes=0-{huge}": (200, 1024),
        f"bytes=-{huge}": (206, 1024),
        f"bytes=1000-{huge}": (206, 24),
        "bytes=0000000000000000000000001-2": (206, 2),
    }
    ignored = (
        "bytes=--",
        "bytes=1-2-3",
        "bytes=a-b",
        "bytes=\u0663-",
        "bytes=-\u0663",
        "items=0-1",
        f"bytes=0-1,{huge}-",
        "bytes=",
        "bytes",
        "=",
        "bytes=5-1x",
        f"{huge}",
    )
    for url in ranged:
        for header in unsatisfiable:
            r = await client.get(url, headers={"Range": header})
            assert r.status_code == 416, (header[:40], r.status_code)
            assert r.headers["content-range"] == "bytes */1024"
            assert len(r.json()["error"]["message"]) < 200
        for header, (status, length) in clamped.items():
            r = await client.get(url, headers={"Range": header})
            # A range that covers the whole file may be answered with the whole file.
            assert r.status_code in (status, 206), (header[:40], r.status_code)
            assert len(r.content) == length, header[:40]
        for header in ignored:
            r = await client.get(url, headers={"Range": header.encode()})
            assert r.status_code == 200, (header[:40], r.status_code)
            assert len(r.content) == 1024
        r = await client.head(url, headers={"Range": f"bytes={huge}-"})
        assert r.status_code == 416
