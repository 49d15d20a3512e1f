"""Serving the built web UI at ``/``: assets, SPA fallback, reserved paths."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from starlette.routing import Match

from orchard.api.ui import UiRoute, is_reserved, serve_ui
from orchard.app import create_app
from orchard.settings import Settings

INDEX = "<!doctype html><title>Orchard</title><div id=root></div>"


def make_build(root: Path) -> Path:
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_text(INDEX)
    (root / "assets" / "index-abc123.js").write_text("console.log('orchard')")
    (root / "favicon.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    return root


async def client_for(ui_dir: Path, tmp_path: Path) -> httpx.AsyncClient:
    app = create_app(Settings(data_dir=tmp_path / "data", ui_dir=ui_dir, log_json=False))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ui.test")


@pytest.fixture
async def ui(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with await client_for(make_build(tmp_path / "dist"), tmp_path) as c:
        yield c


async def test_root_serves_index_uncached(ui: httpx.AsyncClient) -> None:
    r = await ui.get("/")
    assert r.status_code == 200
    assert r.text == INDEX
    assert r.headers["content-type"].startswith("text/html")
    assert r.headers["cache-control"] == "no-cache"


@pytest.mark.parametrize(
    "path", ["/projects", "/project/demo/package/hello/version/1.0.0", "/admin/audit", "/login"]
)
async def test_deep_links_fall_back_to_index(ui: httpx.AsyncClient, path: str) -> None:
    r = await ui.get(path)
    assert r.status_code == 200
    assert r.text == INDEX


async def test_hashed_assets_are_cached_for_long(ui: httpx.AsyncClient) -> None:
    r = await ui.get("/assets/index-abc123.js")
    assert r.status_code == 200
    assert "immutable" in r.headers["cache-control"]
    assert "max-age=31536000" in r.headers["cache-control"]
    assert (await ui.head("/assets/index-abc123.js")).status_code == 200


async def test_other_build_files_and_missing_assets(ui: httpx.AsyncClient) -> None:
    r = await ui.get("/favicon.svg")
    assert r.status_code == 200
    assert "immutable" not in r.headers["cache-control"]
    assert (await ui.get("/assets/gone-123.js")).status_code == 404


@pytest.mark.parametrize(
    "path", ["/api", "/api/v1/x", "/pypi/x/simple/", "/npm/x/y", "/go/x/@v/list", "/health",
             "/metrics"],
)
def test_reserved_paths_are_never_matched(path: str) -> None:
    assert is_reserved(path)
    route = UiRoute("/{path:path}", serve_ui, methods=["GET"])
    assert route.matches({"type": "http", "path": path, "method": "GET"})[0] is Match.NONE


@pytest.mark.parametrize("path", ["/", "/apis", "/gopher", "/projects/pypi", "/healthy"])
def test_other_paths_are_the_apps(path: str) -> None:
    assert not is_reserved(path)


@pytest.mark.parametrize("path", ["/api/v1/nothing-here", "/api", "/health/extra"])
async def test_reserved_paths_never_get_the_app(ui: httpx.AsyncClient, path: str) -> None:
    r = await ui.get(path)
    assert r.status_code == 404
    assert r.text != INDEX


async def test_api_routes_keep_their_own_answers(ui: httpx.AsyncClient) -> None:
    # POST-only route: still 405, not swallowed by the app's GET catch-all.
    r = await ui.get("/api/v1/uploads")
    assert r.status_code == 405
    assert r.json()["error"]["code"] == "method_not_allowed"
    assert (await ui.get("/api/v1/openapi.json")).json()["info"]["title"] == "Orchard"


async def test_path_traversal_stays_inside_the_build(ui: httpx.AsyncClient, tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_text("secret")
    for path in ("/..%2fsecret.txt", "/assets/..%2f..%2fsecret.txt", "/%2e%2e/secret.txt"):
        r = await ui.get(path)
        assert "secret" not in r.text


async def test_post_to_a_page_is_not_allowed(ui: httpx.AsyncClient) -> None:
    assert (await ui.post("/projects")).status_code == 405


async def test_missing_build_explains_how_to_build(tmp_path: Path) -> None:
    async with await client_for(tmp_path / "no-dist", tmp_path) as c:
        r = await c.get("/projects")
        assert r.status_code == 200
        assert "scripts/setup.sh" in r.text
        assert "ORCHARD_UI_DIR" in r.text


def test_ui_dir_setting(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ORCHARD_UI_DIR", str(tmp_path / "ui"))
    assert Settings().ui_dir == tmp_path / "ui"
    monkeypatch.delenv("ORCHARD_UI_DIR")
    assert Settings().ui_dir.parts[-2:] == ("frontend", "dist")
