"""Real pip and uv through a live ``orchard serve`` proxying a fake upstream
index on 127.0.0.1: installs are cached, keep working when the upstream is
down, and a corrupted upstream file fails the install and is not kept.
Runs on both stacks (ORCHARD_TEST_STACK)."""

from __future__ import annotations

import hashlib
import sys
import time
from pathlib import Path

import httpx
import pytest

from orchard.settings import Settings
from tests.conftest import LiveServer
from tests.e2e.test_pypi_clients import BIN, client_env, pip_install, run
from tests.fakes.pypi_upstream import FakePyPI
from tests.pypi_proxy_support import publish


@pytest.fixture
def settings(stack_settings: Settings, fake: FakePyPI) -> Settings:
    return stack_settings.model_copy(
        update={"upstream_pypi_url": fake.url, "cache_ttl_index": 1,
                "http_connect_timeout": 2.0, "http_read_timeout": 5.0}
    )


def uv_install(index: str, target: Path, home: Path, *reqs: str) -> None:
    run([str(BIN / "uv"), "pip", "install", "--index-url", index, "--python", sys.executable,
         "--target", str(target), *reqs], client_env(home))


def test_pip_and_uv_install_through_the_proxy_and_from_cache_when_upstream_is_down(
    live_server: LiveServer, fake: FakePyPI, tmp_path: Path
) -> None:
    app = publish(fake, "proxied-app", "1.0", requires_dist=("proxied-dep>=1",))
    dep = publish(fake, "proxied-dep", "1.2")
    index = f"{live_server.url}/pypi/proxy/simple/"
    home = tmp_path / "home"

    pip_install(index, tmp_path / "pip", home, "proxied-app")
    assert (tmp_path / "pip" / "proxied_app" / "__init__.py").is_file()
    assert (tmp_path / "pip" / "proxied_dep" / "__init__.py").is_file()
    assert fake.hits(f"/files/{app.filename}.metadata") == 1  # pip used the sidecar
    uv_install(f"{live_server.url}/pypi/simple/", tmp_path / "uv", home, "proxied-app")
    assert (tmp_path / "uv" / "proxied_dep" / "__init__.py").is_file()
    assert fake.hits(f"/files/{app.filename}") == 1
    assert fake.hits(f"/files/{dep.filename}") == 1

    fake.stop()
    time.sleep(1.5)  # past the page TTL: pages are revalidated, and the upstream is gone
    pip_install(index, tmp_path / "pip2", home, "proxied-app")
    assert (tmp_path / "pip2" / "proxied_dep" / "__init__.py").is_file()
    uv_install(index, tmp_path / "uv2", home, "proxied-app")
    assert (tmp_path / "uv2" / "proxied_app" / "__init__.py").is_file()
    stale = httpx.get(f"{index}proxied-app/")
    assert stale.status_code == 200 and stale.headers["x-orchard-stale"] == "1"


def test_corrupted_upstream_file_fails_pip_and_is_not_kept(
    live_server: LiveServer, fake: FakePyPI, tmp_path: Path
) -> None:
    bad = publish(fake, "broken-upstream", "1.0")
    fake.index.corrupt.add(bad.filename)
    index = f"{live_server.url}/pypi/proxy/simple/"
    done = pip_install(index, tmp_path / "pip", tmp_path / "home", "broken-upstream", ok=False)
    assert done.returncode != 0
    assert not (tmp_path / "pip" / "broken_upstream").exists()
    corrupted = bad.content[:-1] + bytes([bad.content[-1] ^ 0xFF])
    for content in (bad.content, corrupted):
        sha = hashlib.sha256(content).hexdigest()
        r = httpx.get(f"{live_server.url}/api/v1/artifacts/{sha}", headers=live_server.auth)
        assert r.status_code == 404
