"""Real Python clients against a live ``orchard serve``: twine uploads
wheels and sdists built here by ``python -m build``; pip and uv install
them (with --require-hashes once), pip reads the PEP 658 sidecars, yanked
versions are skipped, a private project needs the credentials in the index
URL. Runs on both stacks (ORCHARD_TEST_STACK)."""

from __future__ import annotations

import hashlib
import io
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import httpx
import pytest

from tests.conftest import LiveServer

PKG = "Orchard_E2E.Demo"  # normalises to orchard-e2e-demo
MODULE = "orchard_e2e_demo"
METADATA_ROUTE = "/pypi/{project}/files/{name}/{version}/{filename}.metadata"
BIN = Path(sys.executable).parent


def client_env(home: Path) -> dict[str, str]:
    """The machine's environment without pip/uv/twine settings, HOME in tmp."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PIP_", "UV_", "TWINE_", "ORCHARD_"))}
    home.mkdir(parents=True, exist_ok=True)
    env.update(HOME=str(home), PIP_CONFIG_FILE=os.devnull, UV_NO_CACHE="1", UV_NO_CONFIG="1",
               UV_PYTHON_DOWNLOADS="never", XDG_CONFIG_HOME=str(home / ".config"),
               XDG_CACHE_HOME=str(home / ".cache"),
               PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring",
               PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
    return env


def run(args: list[str], env: dict[str, str], ok: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
    if ok and done.returncode != 0:
        raise AssertionError(f"{args[:3]} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Path]]:
    """Wheel and sdist of versions 1.0 and 1.1, built by ``python -m build``."""
    out: dict[str, dict[str, Path]] = {}
    for version in ("1.0", "1.1"):
        src = tmp_path_factory.mktemp(f"src-{version}")
        (src / MODULE).mkdir()
        (src / MODULE / "__init__.py").write_text(f'"""Demo."""\n__version__ = "{version}"\n')
        (src / "pyproject.toml").write_text(
            '[build-system]\nrequires = ["flit_core>=3.4"]\n'
            'build-backend = "flit_core.buildapi"\n\n'
            f'[project]\nname = "{PKG}"\nversion = "{version}"\ndescription = "demo"\n'
            'requires-python = ">=3.8"\ndependencies = []\n\n'
            f'[tool.flit.module]\nname = "{MODULE}"\n'
        )
        env = client_env(src / "home")
        run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(src / "dist"),
             str(src)], env)
        out[version] = {
            "wheel": next((src / "dist").glob("*.whl")),
            "sdist": next((src / "dist").glob("*.tar.gz")),
        }
    return out


def make_project(server: LiveServer, name: str, public: bool = True) -> None:
    r = httpx.post(f"{server.url}/api/v1/projects", headers=server.auth,
                   json={"name": name, "is_public": public, "upstream": False})
    assert r.status_code == 201, r.text


def twine_upload(server: LiveServer, project: str, files: list[Path], home: Path) -> None:
    run([str(BIN / "twine"), "upload", "--non-interactive", "--disable-progress-bar",
         "--repository-url", f"{server.url}/pypi/{project}/", "-u", "__token__",
         "-p", server.token, *map(str, files)], client_env(home))


def pip_install(index: str, target: Path, home: Path, *args: str,
                ok: bool = True) -> subprocess.CompletedProcess[str]:
    return run([sys.executable, "-m", "pip", "install", "--index-url", index, "--no-cache-dir",
                "--target", str(target), *args], client_env(home), ok=ok)


def installed_version(target: Path) -> str:
    (dist_info,) = target.glob("orchard_e2e_demo-*.dist-info")
    return dist_info.name.removesuffix(".dist-info").split("-")[1]


def altered(wheel: Path) -> bytes:
    """The same wheel (same METADATA) with one more file: other bytes."""
    buf = io.BytesIO()
    with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(buf, "w") as dst:
        for info in src.infolist():
            dst.writestr(info, src.read(info))
        dst.writestr(f"{MODULE}/extra.txt", "more")
    return buf.getvalue()


def metadata_requests(server: LiveServer) -> int:
    text = httpx.get(f"{server.url}/metrics").text
    total = 0
    for line in text.splitlines():
        if line.startswith("orchard_http_requests_total{") and \
                f'route="{METADATA_ROUTE}"' in line and 'status="200"' in line:
            total += int(float(line.rsplit(" ", 1)[1]))
    return total


def test_twine_upload_then_pip_and_uv_install(
    live_server: LiveServer, dists: dict[str, dict[str, Path]], tmp_path: Path
) -> None:
    make_project(live_server, "team")
    files = [dists["1.0"]["wheel"], dists["1.0"]["sdist"]]
    twine_upload(live_server, "team", files, tmp_path / "h")
    index = f"{live_server.url}/pypi/team/simple/"

    # The same bytes again: success; other bytes under the same name: 409.
    wheel = files[0]
    form = {":action": "file_upload", "protocol_version": "1", "name": PKG, "version": "1.0",
            "filetype": "bdist_wheel",
            "sha256_digest": hashlib.sha256(wheel.read_bytes()).hexdigest()}
    auth = ("__token__", live_server.token)
    again = httpx.post(f"{live_server.url}/pypi/team/", data=form, auth=auth,
                       files={"content": (wheel.name, wheel.read_bytes())})
    assert again.status_code == 200, again.text
    form.pop("sha256_digest")
    clash = httpx.post(f"{live_server.url}/pypi/team", data=form, auth=auth,
                       files={"content": (wheel.name, altered(wheel))})
    assert clash.status_code == 409, clash.text
    assert "already exists" in clash.text
    lying = httpx.post(f"{live_server.url}/pypi/team/", data=form, auth=auth,
                       files={"content": (wheel.name, dists["1.1"]["wheel"].read_bytes())})
    assert lying.status_code == 400  # the file's own METADATA says 1.1
    assert "says version 1.1" in lying.text

    before = metadata_requests(live_server)
    pip_install(index, tmp_path / "pip", tmp_path / "h", f"{PKG}==1.0")
    assert (tmp_path / "pip" / MODULE / "__init__.py").is_file()
    assert installed_version(tmp_path / "pip") == "1.0"
    assert metadata_requests(live_server) > before, "pip did not fetch the .metadata sidecar"

    run([str(BIN / "uv"), "pip", "install", "--index-url", index, "--python", sys.executable,
         "--target", str(tmp_path / "uv"), f"{PKG}==1.0"], client_env(tmp_path / "h"))
    assert installed_version(tmp_path / "uv") == "1.0"

    # --require-hashes, with the hashes of both files in a requirements file.
    hashes = " ".join(f"--hash=sha256:{hashlib.sha256(f.read_bytes()).hexdigest()}"
                      for f in files)
    req = tmp_path / "requirements.txt"
    req.write_text(f"{PKG}==1.0 {hashes}\n")
    pip_install(index, tmp_path / "hashed", tmp_path / "h", "--require-hashes", "-r", str(req))
    assert installed_version(tmp_path / "hashed") == "1.0"
    req.write_text(f"{PKG}==1.0 --hash=sha256:{'0' * 64}\n")
    bad = pip_install(index, tmp_path / "bad", tmp_path / "h", "--require-hashes", "-r",
                      str(req), ok=False)
    assert bad.returncode != 0 and "DO NOT MATCH THE HASHES" in bad.stderr


def test_a_second_identical_twine_upload_does_not_fail(
    live_server: LiveServer, dists: dict[str, dict[str, Path]], tmp_path: Path
) -> None:
    make_project(live_server, "again")
    files = [dists["1.0"]["wheel"]]
    twine_upload(live_server, "again", files, tmp_path / "h")
    twine_upload(live_server, "again", files, tmp_path / "h")


def test_yanked_versions_are_skipped(
    live_server: LiveServer, dists: dict[str, dict[str, Path]], tmp_path: Path
) -> None:
    make_project(live_server, "yank")
    twine_upload(live_server, "yank", [dists["1.0"]["wheel"], dists["1.1"]["wheel"]],
                 tmp_path / "h")
    r = httpx.patch(f"{live_server.url}/api/v1/project/yank/packages/orchard-e2e-demo/"
                    "versions/1.1", json={"yanked": True, "yank_reason": "broken"},
                    headers=live_server.auth)
    assert r.status_code == 200, r.text
    index = f"{live_server.url}/pypi/yank/simple/"
    pip_install(index, tmp_path / "pip", tmp_path / "h", PKG)
    assert installed_version(tmp_path / "pip") == "1.0"
    run([str(BIN / "uv"), "pip", "install", "--index-url", index, "--python", sys.executable,
         "--target", str(tmp_path / "uv"), PKG], client_env(tmp_path / "h"))
    assert installed_version(tmp_path / "uv") == "1.0"
    pinned = pip_install(index, tmp_path / "pinned", tmp_path / "h", f"{PKG}==1.1")
    assert installed_version(tmp_path / "pinned") == "1.1"
    assert "yanked" in (pinned.stdout + pinned.stderr).lower()


def test_private_project_needs_credentials_in_the_index_url(
    live_server: LiveServer, dists: dict[str, dict[str, Path]], tmp_path: Path
) -> None:
    make_project(live_server, "priv", public=False)
    twine_upload(live_server, "priv", [dists["1.0"]["wheel"]], tmp_path / "h")
    plain = f"{live_server.url}/pypi/priv/simple/"
    denied = pip_install(plain, tmp_path / "anon", tmp_path / "h", PKG, ok=False)
    assert denied.returncode != 0
    assert "No matching distribution" in denied.stderr
    with_token = re.sub(r"^http://", f"http://__token__:{live_server.token}@", plain)
    pip_install(with_token, tmp_path / "pip", tmp_path / "h", PKG)
    assert installed_version(tmp_path / "pip") == "1.0"
    run([str(BIN / "uv"), "pip", "install", "--index-url", with_token, "--python",
         sys.executable, "--target", str(tmp_path / "uv"), PKG], client_env(tmp_path / "h"))
    assert installed_version(tmp_path / "uv") == "1.0"
