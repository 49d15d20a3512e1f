"""Orchard behind a real nginx (the server block of docs/nginx/orchard.conf)
with ``ORCHARD_ACCEL_REDIRECT``: Orchard decides (access, headers, 304) and
nginx sends the blob's bytes itself; ranges, private projects and clients
that reach Orchard directly keep working. Blobs on the filesystem only, so
the server here always runs on the embedded stack, whichever stack the
suite runs on."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from orchard.headers import STRICT_POLICY
from orchard.settings import Settings
from tests.conftest import (
    ADMIN_PASSWORD,
    NO_UPSTREAMS,
    LiveServer,
    free_port,
    start_live_server,
)
from tests.e2e.test_pypi_clients import pip_install
from tests.fakes.pypi_upstream import FakePyPI
from tests.pypi_proxy_support import publish

ROOT = Path(__file__).resolve().parents[2]
PREFIX = "/_orchard/blobs/"
FILE = "/api/v1/project/{project}/packages/tool/versions/1.0/files/{name}"
BIG = bytes(range(256)) * (3 * 4096 + 17)  # 3 MiB and a bit: one blob, by path
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


@pytest.fixture
def settings(tmp_path: Path, fake: FakePyPI) -> Settings:
    return Settings(data_dir=tmp_path / "data", admin_password=ADMIN_PASSWORD,
                    accel_redirect=PREFIX, log_json=True,
                    **{**NO_UPSTREAMS, "upstream_pypi_url": fake.url})


@pytest.fixture
def nginx(live_server: LiveServer, settings: Settings, tmp_path: Path) -> Iterator[str]:
    """nginx in front of the live server, configured from the operators' docs."""
    assert os.access(NGINX, os.X_OK), "nginx is not installed (.ci/run installs it)"
    run = tmp_path / "nginx"
    run.mkdir()
    port = free_port()
    block = (ROOT / "docs" / "nginx" / "orchard.conf").read_text()
    block = (block.replace("@LISTEN@", f"127.0.0.1:{port}")
             .replace("@ORCHARD@", live_server.url.removeprefix("http://"))
             .replace("@BLOBS@", str(settings.data_dir / "blobs"))
             .replace("@UPLOADS@", str(run / "uploads")))
    temp = "\n".join(f"    {kind}_temp_path {run}/{kind};"
                     for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    (run / "nginx.conf").write_text(
        f"user root;\nworker_processes 1;\npid {run}/nginx.pid;\n"
        f"error_log {run}/error.log warn;\nevents {{ worker_connections 64; }}\n"
        f"http {{\n    access_log {run}/access.log;\n{temp}\n"
        f"    default_type application/octet-stream;\n{block}\n}}\n"
    )
    process = subprocess.Popen(
        [NGINX, "-e", str(run / "error.log"), "-p", str(run), "-c", str(run / "nginx.conf"),
         "-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 10
        while True:
            assert process.poll() is None, f"nginx exited: {process.stderr.read()!r}"  # type: ignore[union-attr]
            try:
                httpx.get(f"{url}/health", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "nginx did not start"
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(10)
        print(f"--- nginx error log ---\n{(run / 'error.log').read_text(errors='replace')[-3000:]}")


def upload(server: LiveServer, project: str, public: bool) -> str:
    r = httpx.post(f"{server.url}/api/v1/projects", headers=server.auth,
                   json={"name": project, "is_public": public, "upstream": False})
    assert r.status_code == 201, r.text
    path = FILE.format(project=project, name="tool-1.0.bin")
    r = httpx.put(f"{server.url}{path}", content=BIG, headers=server.auth, timeout=30)
    assert r.status_code == 201, r.text
    return path


def test_nginx_sends_the_blobs_that_orchard_points_it_to(
    live_server: LiveServer, nginx: str
) -> None:
    path = upload(live_server, "tools", public=True)
    sha = hashlib.sha256(BIG).hexdigest()
    key = f"sha256/{sha[:2]}/{sha[2:4]}/{sha}"

    # Through nginx: the whole file, with Orchard's headers.
    r = httpx.get(f"{nginx}{path}")
    assert r.status_code == 200
    assert r.content == BIG
    assert "x-accel-redirect" not in r.headers
    assert r.headers["etag"] == f'"{sha}"'
    assert r.headers["x-checksum-sha256"] == sha
    assert 'filename="tool-1.0.bin"' in r.headers["content-disposition"]
    assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["referrer-policy"] == "same-origin"
    assert r.headers["content-security-policy"] == STRICT_POLICY

    # What nginx got from Orchard: the redirect and no body.
    direct = httpx.get(f"{live_server.url}{path}", headers={"X-Orchard-Accel": "on"})
    assert direct.status_code == 200
    assert direct.headers["x-accel-redirect"] == PREFIX + key
    assert direct.content == b""
    # A client that reaches Orchard directly still gets the bytes.
    plain = httpx.get(f"{live_server.url}{path}")
    assert plain.content == BIG and "x-accel-redirect" not in plain.headers

    # A range, a revalidation, a HEAD: all answered as without nginx's help.
    part = httpx.get(f"{nginx}{path}", headers={"Range": "bytes=1000-1999"})
    assert part.status_code == 206
    assert part.content == BIG[1000:2000]
    assert part.headers["content-range"] == f"bytes 1000-1999/{len(BIG)}"
    again = httpx.get(f"{nginx}{path}", headers={"If-None-Match": f'"{sha}"'})
    assert again.status_code == 304 and again.content == b""
    head = httpx.head(f"{nginx}{path}")
    assert head.status_code == 200 and head.headers["content-length"] == str(len(BIG))

    # The internal location cannot be reached by a URL.
    assert httpx.get(f"{nginx}{PREFIX}{key}").status_code == 404


def test_orchard_still_decides_who_may_read(live_server: LiveServer, nginx: str) -> None:
    path = upload(live_server, "secret", public=False)
    anonymous = httpx.get(f"{nginx}{path}")
    assert anonymous.status_code in (401, 404)
    assert BIG[:64] not in anonymous.content
    assert "x-accel-redirect" not in anonymous.headers
    allowed = httpx.get(f"{nginx}{path}", headers=live_server.auth)
    assert allowed.status_code == 200 and allowed.content == BIG


def test_pip_installs_through_nginx_from_the_proxy(
    live_server: LiveServer, nginx: str, fake: FakePyPI, tmp_path: Path
) -> None:
    dist = publish(fake, "fronted-app", "1.0")
    index = f"{nginx}/pypi/simple/"
    # Cold: the file streams from the upstream through Orchard and nginx while it is stored.
    pip_install(index, tmp_path / "cold", tmp_path / "home", "fronted-app")
    # Warm, in a fresh target: Orchard names the blob, nginx sends it.
    pip_install(index, tmp_path / "warm", tmp_path / "home", "fronted-app")
    assert (tmp_path / "warm" / "fronted_app" / "__init__.py").is_file()
    assert fake.hits(f"/files/{dist.filename}") == 1

    page = httpx.get(f"{index}fronted-app/",
                     headers={"Accept": "application/vnd.pypi.simple.v1+json"}).json()
    (entry,) = page["files"]
    assert entry["url"].startswith(f"{nginx}/pypi/"), "links name the host the client used"
    direct = httpx.get(entry["url"].replace(nginx, live_server.url),
                       headers={"X-Orchard-Accel": "on"})
    assert direct.headers["x-accel-redirect"].startswith(PREFIX + "sha256/")
    assert direct.content == b""
    via_nginx = httpx.get(entry["url"])
    assert hashlib.sha256(via_nginx.content).hexdigest() == entry["hashes"]["sha256"]


def test_the_header_counts_only_from_a_trusted_proxy(settings: Settings, tmp_path: Path) -> None:
    server = start_live_server(
        settings.model_copy(update={"forwarded_allow_ips": "10.9.9.0/24"}), tmp_path / "log"
    )
    try:
        path = upload(server, "tools", public=True)
        r = httpx.get(f"{server.url}{path}", headers={"X-Orchard-Accel": "on"})
        assert r.status_code == 200
        assert "x-accel-redirect" not in r.headers
        assert r.content == BIG
    finally:
        server.stop()


async def test_the_setting_needs_blobs_on_the_filesystem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orchard.app import create_app
    from orchard.errors import ConfigurationError

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "orchard-test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "orchard-test")

    settings = Settings(data_dir=tmp_path / "data", admin_password=ADMIN_PASSWORD,
                        storage_url="s3://bucket/blobs", s3_endpoint_url="http://127.0.0.1:9",
                        accel_redirect=PREFIX, **NO_UPSTREAMS)
    app = create_app(settings)
    with pytest.raises(ConfigurationError, match="ORCHARD_ACCEL_REDIRECT needs blobs on the"):
        async with app.router.lifespan_context(app):
            pass


@pytest.mark.parametrize("prefix", ["/", "blobs/", "/blobs", "/a/../b/", "/a b/", "/x/?y/"])
def test_a_bad_prefix_is_refused(prefix: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"accel_redirect(.|\n)*absolute path prefix"):
        Settings(data_dir=tmp_path, accel_redirect=prefix)
