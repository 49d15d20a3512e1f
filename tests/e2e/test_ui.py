"""The web UI in a real browser (Debian's Chromium driven by Playwright)
against a live ``orchard serve`` on the stack under test.

One flow, in the order a new installation sees it: the administrator signs
in, changes the first password, creates a user and a private project, uploads
files by drag and drop (one single-request, one chunked and resumable) with
the progress bar, finds the package by search, copies its install command,
creates and revokes a token, adds the user as a member, and the project
disappears for that user when the membership is removed. Screenshots of the
main pages (light, dark, phone width) go to ``test-artifacts/ui/``.

Chromium comes from Debian (``/usr/bin/chromium``, installed by ``.ci/run``);
Playwright's own browser download is never used. Without Chromium this test
fails: it is never skipped.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from orchard.settings import default_ui_dir
from tests.conftest import ADMIN_PASSWORD, STACK, LiveServer

CHROMIUM = Path(os.environ.get("ORCHARD_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "ui" / STACK
NEW_ADMIN_PASSWORD = "a-much-better-admin-password-42"
BOB_PASSWORD = "bob-password-for-ui-tests"
PROJECT = "ui-private"
PACKAGE = "hello-tool"
BIG_SIZE = 9 * 1024 * 1024 + 123  # above the 8 MiB threshold: chunked, resumable
TIMEOUT_MS = 20_000

pytestmark = pytest.mark.slow


def pattern(size: int) -> bytes:
    """The bytes the page generates for the big file: i % 251."""
    return (bytes(range(251)) * (size // 251 + 1))[:size]


@pytest.fixture
def browser() -> Iterator[object]:
    assert CHROMIUM.exists(), (
        f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium); "
        ".ci/run does this on CI"
    )
    assert (default_ui_dir() / "index.html").is_file(), (
        "the web UI is not built: run scripts/setup.sh (npm ci && npm run build in frontend/)"
    )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


def note_failed_request(request: object) -> None:
    failure = request.failure  # type: ignore[attr-defined]
    if failure != "net::ERR_ABORTED":
        print(f"request failed: {request.method} {request.url}: {failure}")  # type: ignore[attr-defined]


def shot(page: object, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)  # type: ignore[attr-defined]


def drop_file(page: object, name: str, size: int | None = None, text: str | None = None) -> None:
    """Drop a file on the upload zone, the way a drag from the desktop does."""
    handle = page.evaluate_handle(  # type: ignore[attr-defined]
        """([name, size, text]) => {
            let data;
            if (text !== null) data = new TextEncoder().encode(text);
            else { data = new Uint8Array(size); for (let i = 0; i < size; i++) data[i] = i % 251; }
            const dt = new DataTransfer();
            dt.items.add(new File([data], name, { type: "application/octet-stream" }));
            return dt;
        }""",
        [name, size, text],
    )
    page.dispatch_event("[data-testid=dropzone]", "drop", {"dataTransfer": handle})  # type: ignore[attr-defined]


def sign_in(page: object, base: str, username: str, password: str) -> None:
    page.goto(f"{base}/login")  # type: ignore[attr-defined]
    page.get_by_label("User name").fill(username)  # type: ignore[attr-defined]
    page.get_by_label("Password", exact=True).fill(password)  # type: ignore[attr-defined]
    page.get_by_role("button", name="Sign in").click()  # type: ignore[attr-defined]


def test_ui_flow(live_server: LiveServer, browser: object) -> None:
    from playwright.sync_api import expect

    base = live_server.url
    expect.set_options(timeout=TIMEOUT_MS)
    context = browser.new_context(  # type: ignore[attr-defined]
        viewport={"width": 1280, "height": 860},
        permissions=["clipboard-read", "clipboard-write"],
    )
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # Requests the browser saw fail at the network level (printed, so a
    # failure's report says which and why; navigation's own aborts aside).
    page.on("requestfailed", note_failed_request)

    # A deep link works before anyone signs in (the SPA fallback), and
    # anonymous visitors see the public catalogue.
    page.goto(f"{base}/projects?visibility=public")
    expect(page.get_by_role("heading", name="Projects")).to_be_visible()

    # Sign in; the preset password must be changed first.
    sign_in(page, base, "admin", "wrong password")
    expect(page.get_by_role("alert")).to_contain_text("invalid user name or password")
    shot(page, "01-sign-in-error")
    page.get_by_label("Password", exact=True).fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Choose a new password")).to_be_visible()
    shot(page, "02-first-password-change")
    page.get_by_label("Current password").fill(ADMIN_PASSWORD)
    page.get_by_label("New password", exact=True).fill(NEW_ADMIN_PASSWORD)
    page.get_by_label("New password, again").fill(NEW_ADMIN_PASSWORD)
    page.get_by_role("button", name="Change password").click()
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    expect(page.get_by_test_id("signed-in-as")).to_have_text("admin")

    # A user, made on the admin page.
    page.get_by_role("link", name="Users").click()
    page.get_by_label("User name").fill("bob")
    page.get_by_label("Initial password").fill(BOB_PASSWORD)
    page.get_by_label("Must change password").uncheck()
    page.get_by_role("button", name="Create user").click()
    expect(page.locator("tr[data-user=bob]")).to_be_visible()
    shot(page, "03-admin-users")

    # A private project.
    page.get_by_role("link", name="Projects").click()
    page.get_by_text("New project").click()
    page.get_by_label("Name").fill(PROJECT)
    page.get_by_label("Description").fill("Built by the UI test")
    page.get_by_label("Public (anyone may read it)").uncheck()
    page.get_by_role("button", name="Create project").click()
    expect(page.get_by_role("heading", name=PROJECT)).to_be_visible()
    expect(page.get_by_text("private", exact=True)).to_be_visible()

    # Upload by drag and drop: a small file (one request) and a big one
    # (chunked through /api/v1/uploads), with the progress bar.
    page.get_by_role("link", name="Upload files").click()
    expect(page.get_by_label("Project")).to_have_value(PROJECT)
    page.get_by_label("Package").fill(PACKAGE)
    page.get_by_label("Version").fill("1.0.0")
    page.evaluate(
        """() => { window.__progress = []; new MutationObserver(() => {
            for (const el of document.querySelectorAll('[role=progressbar]'))
              window.__progress.push(Number(el.getAttribute('aria-valuenow')));
          }).observe(document.body, {subtree: true, attributes: true, childList: true}); }"""
    )
    drop_file(page, "hello.txt", text="hello from the orchard UI test\n")
    drop_file(page, "big.bin", size=BIG_SIZE)
    expect(page.get_by_role("list", name="Files to upload")).to_contain_text("big.bin")
    page.get_by_role("button", name="Upload 2 files").click()
    for name in ("hello.txt", "big.bin"):
        item = page.locator(f"li[data-upload='{name}']")
        expect(item).to_have_attribute("data-state", "done")
        expect(item.get_by_role("progressbar")).to_have_attribute("aria-valuenow", "100")
    expect(page.locator("li[data-upload='big.bin']")).to_contain_text("chunked, resumable")
    seen = page.evaluate("window.__progress")
    assert any(0 < v < 100 for v in seen), f"no intermediate progress seen: {sorted(set(seen))}"
    shot(page, "04-upload")
    # A finished upload is forgotten (nothing left to resume).
    assert not page.evaluate(
        "Object.keys(localStorage).filter(k => k.startsWith('orchard.upload:'))"
    )

    version_url = f"{base}/api/v1/project/{PROJECT}/packages/{PACKAGE}/versions/1.0.0"
    listing = httpx.get(version_url, headers=live_server.auth).json()
    stored = {f["filename"]: f["sha256"] for f in listing["files"]}
    assert stored["big.bin"] == hashlib.sha256(pattern(BIG_SIZE)).hexdigest()
    assert stored["hello.txt"] == hashlib.sha256(b"hello from the orchard UI test\n").hexdigest()

    # Find it by search, open the package, copy its install command.
    page.get_by_role("link", name="Search").click()
    page.get_by_label("Package name").fill("hello")
    page.get_by_role("button", name="Search").click()
    results = page.get_by_role("list", name="Search results")
    expect(results).to_contain_text(PROJECT)
    shot(page, "05-search")
    results.get_by_role("link", name=PACKAGE).click()
    expect(page.get_by_role("heading", name=PACKAGE)).to_be_visible()
    curl = page.locator("[data-install=curl]")
    expect(curl.locator("code")).to_contain_text("/files/")
    command = curl.locator("code").inner_text()
    assert command.startswith("curl -fL"), command
    assert f"/api/v1/project/{PROJECT}/packages/generic:{PACKAGE}/versions/1.0.0/files/" in command
    copy = curl.get_by_role("button", name=re.compile("Copy curl command"))
    copy.click()
    expect(copy).to_have_attribute("data-state", "copied")
    assert page.evaluate("navigator.clipboard.readText()") == command
    shot(page, "06-package")

    # The version page: files, sizes, hashes, download links.
    page.get_by_role("link", name="1.0.0").first.click()
    files = page.get_by_role("table", name="Files")
    expect(files).to_contain_text("big.bin")
    expect(files).to_contain_text("9 MiB")
    expect(files.get_by_role("link", name="hello.txt")).to_have_attribute(
        "href", re.compile(r"/files/hello\.txt$")
    )
    shot(page, "07-version")
    files.get_by_title(stored["hello.txt"]).click()
    expect(page.get_by_role("heading", name="Artifact")).to_be_visible()
    expect(page.get_by_role("table", name="References")).to_contain_text(PACKAGE)
    shot(page, "08-artifact")

    # A token: shown once, copied, gone after a reload, then revoked.
    page.get_by_role("link", name="Tokens").click()
    page.get_by_label("Name").fill("ui-ci")
    page.get_by_label("Scope").select_option("write")
    page.get_by_role("button", name="Create token").click()
    secret = page.get_by_test_id("new-token").locator("code").inner_text()
    assert len(secret) > 20
    page.get_by_test_id("new-token").get_by_role("button", name=re.compile("Copy token")).click()
    assert page.evaluate("navigator.clipboard.readText()") == secret
    as_token = {"Authorization": f"Bearer {secret}"}
    assert httpx.get(f"{base}/api/v1/auth/me", headers=as_token).json()["username"] == "admin"
    shot(page, "09-token-created")
    page.reload()
    expect(page.locator("tr[data-token=ui-ci]")).to_have_attribute("data-state", "active")
    assert secret not in page.content()
    page.once("dialog", lambda d: d.accept())
    page.get_by_role("button", name="Revoke ui-ci").click()
    expect(page.locator("tr[data-token=ui-ci]")).to_have_attribute("data-state", "revoked")
    assert httpx.get(f"{base}/api/v1/auth/me", headers=as_token).status_code == 401

    # Bob, in a browser of his own, does not see the private project...
    bob_context = browser.new_context(viewport={"width": 390, "height": 844})  # type: ignore[attr-defined]
    bob_context.set_default_timeout(TIMEOUT_MS)
    bob = bob_context.new_page()
    sign_in(bob, base, "bob", BOB_PASSWORD)
    expect(bob.get_by_role("heading", name="Dashboard")).to_be_visible()
    bob.goto(f"{base}/projects")
    expect(bob.get_by_role("list", name="Projects")).to_contain_text("proxy")  # public, built in
    expect(bob.get_by_role("link", name=PROJECT)).to_have_count(0)

    # ...until the admin adds him as a member,
    page.goto(f"{base}/projects/{PROJECT}")
    add_member = page.get_by_role("form", name="Add member")
    add_member.get_by_label("User name").fill("bob")
    add_member.get_by_role("combobox").select_option("read")
    add_member.get_by_role("button", name="Add member").click()
    expect(page.locator("tr[data-member=bob]")).to_be_visible()
    shot(page, "10-project")
    bob.reload()
    expect(bob.get_by_role("link", name=PROJECT)).to_be_visible()
    shot(bob, "11-phone-projects-as-member")

    # ...and it disappears again when the membership is removed.
    page.once("dialog", lambda d: d.accept())
    page.get_by_role("button", name="Remove bob").click()
    expect(page.locator("tr[data-member=bob]")).to_have_count(0)
    bob.reload()
    expect(bob.get_by_role("list", name="Projects")).to_contain_text("proxy")
    expect(bob.get_by_role("link", name=PROJECT)).to_have_count(0)
    bob.goto(f"{base}/projects/{PROJECT}")
    expect(bob.get_by_role("alert")).to_contain_text("not found")
    bob_context.close()

    # The admin pages, the dashboard, dark theme and phone width.
    page.goto(f"{base}/admin/upstreams")
    expect(page.get_by_role("heading", name="Upstream sources")).to_be_visible()
    unavailable = page.get_by_test_id("upstreams-unavailable")
    form = page.get_by_role("form", name="New upstream source")
    expect(unavailable.or_(form)).to_be_visible()
    form_shown = form.is_visible()
    if form_shown:  # the upstream-sources API is there: add, test (deleted at the end)
        form.get_by_label("Name").fill("local-index")
        form.get_by_label("URL").fill(f"{base}/pypi/proxy/simple/")
        form.get_by_label("Priority").fill("50")
        form.get_by_role("button", name="Add upstream").click()
        row = page.locator("tr[data-upstream=local-index]")
        expect(row).to_contain_text("/pypi/proxy/simple")
        row.get_by_role("button", name="Test connection to local-index").click()
        expect(row).to_contain_text(re.compile(r"(Not reachable|Reachable) ·"))
        shot(page, "12-admin-upstreams")
    else:
        shot(page, "12-admin-upstreams")
    page.goto(f"{base}/admin/audit")
    expect(page.get_by_role("table", name="Audit log")).to_contain_text("member.remove")
    shot(page, "13-admin-audit")
    page.goto(f"{base}/dashboard")
    expect(page.get_by_test_id("kpi-stored")).to_contain_text("MiB")
    expect(page.get_by_role("img", name=re.compile("Cache hit rate"))).to_be_visible()
    if form_shown:
        # Upstream health: the dashboard checks each source.
        expect(page.locator("li[data-upstream=local-index]")).to_contain_text("reachable")
    shot(page, "14-dashboard")
    page.emulate_media(color_scheme="dark")
    shot(page, "15-dashboard-dark")
    page.goto(f"{base}/projects/{PROJECT}/packages/{PACKAGE}")
    expect(page.get_by_role("heading", name=PACKAGE)).to_be_visible()
    shot(page, "16-package-dark")
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{base}/projects/{PROJECT}/packages/{PACKAGE}/versions/1.0.0")
    expect(page.get_by_role("table", name="Files")).to_be_visible()
    shot(page, "17-phone-version-dark")
    page.get_by_role("button", name="Menu").click()
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Tokens")).to_be_visible()
    shot(page, "18-phone-menu-dark")

    if form_shown:
        page.goto(f"{base}/admin/upstreams")
        page.once("dialog", lambda d: d.accept())
        page.get_by_role("button", name="Delete local-index").click()
        expect(page.locator("tr[data-upstream=local-index]")).to_have_count(0)

    # Keyboard: the skip link is the first stop and moves focus to the content.
    page.emulate_media(color_scheme="light")
    page.set_viewport_size({"width": 1280, "height": 860})
    page.goto(f"{base}/projects")
    expect(page.get_by_role("list", name="Projects")).to_be_visible()
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Orchard home")).to_be_focused()

    context.close()
    assert not errors, f"errors in the page: {errors}"


def test_formats_and_encoded_names(live_server: LiveServer, browser: object) -> None:
    """One name in three formats, an npm scope and a Go module path: the
    listing shows each with its format, and each link opens its package
    and its version (the name travels percent-encoded in one segment)."""
    from playwright.sync_api import expect

    base, auth = live_server.url, live_server.auth
    api = f"{base}/api/v1"
    made = httpx.post(f"{api}/projects", json={"name": "formats"}, headers=auth)
    assert made.status_code == 201, made.text
    packages = [
        ("pypi", "yaml", "6.0.2"),
        ("npm", "yaml", "2.8.0"),
        ("generic", "yaml", "1.0"),
        ("npm", "@babel/core", "7.24.0"),
        ("go", "github.com/Azure/go-autorest/v14", "v14.2.0"),
    ]
    for fmt, name, version in packages:
        r = httpx.post(
            f"{api}/project/formats/packages", json={"name": name, "format": fmt}, headers=auth
        )
        assert r.status_code == 201, r.text
        put = httpx.put(
            f"{r.json()['url']}/versions/{version}/files/{fmt}.bin",
            content=f"{fmt} {name}".encode(),
            headers=auth,
        )
        assert put.status_code == 201, put.text

    expect.set_options(timeout=TIMEOUT_MS)
    context = browser.new_context(viewport={"width": 1280, "height": 860})  # type: ignore[attr-defined]
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{base}/projects/formats")
    listing = page.get_by_role("list", name="Packages")
    for fmt, name, _version in packages:
        row = listing.locator(f"li[data-package='{fmt}:{name}']")
        expect(row).to_contain_text(name)
        expect(row.locator(".pill")).to_have_text(fmt)
    shot(page, "19-formats-listing")
    for fmt, name, version in packages:
        page.goto(f"{base}/projects/formats")
        page.locator(f"li[data-package='{fmt}:{name}']").get_by_role("link").click()
        expect(page.get_by_role("heading", name=name, exact=True)).to_be_visible()
        expect(page.locator(".page-head .pill")).to_have_text(fmt)
        page.get_by_role("table", name="Versions").get_by_role("link", name=version).click()
        files = page.get_by_role("table", name="Files")
        expect(files.get_by_role("link", name=f"{fmt}.bin")).to_be_visible()
        href = files.get_by_role("link", name=f"{fmt}.bin").get_attribute("href")
        assert href is not None
        got = httpx.get(href if href.startswith("http") else f"{base}{href}", headers=auth)
        assert got.content == f"{fmt} {name}".encode(), href
    shot(page, "20-go-module-version")
    context.close()
    assert not errors, f"errors in the page: {errors}"


def test_deep_link_reload_and_reserved_paths(live_server: LiveServer) -> None:
    """A reload on any page gets the app; API and protocol paths never do."""
    base = live_server.url
    page = httpx.get(f"{base}/projects/x/packages/y/versions/1.0")
    assert page.status_code == 200
    assert '<div id="root">' in page.text
    asset = re.search(r'src="(/assets/[^"]+\.js)"', page.text)
    assert asset, page.text
    r = httpx.get(base + asset.group(1))
    assert r.status_code == 200
    assert "immutable" in r.headers["cache-control"]
    missing = httpx.get(f"{base}/api/v1/no-such-thing")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    assert httpx.get(f"{base}/health").json()["status"] in ("healthy", "degraded")
