"""`orchard serve` stays small: one process, and no library it does not use.

The server's resident memory is summed over its process tree, so a default
`orchard serve` must not keep a supervisor beside its worker, and the
serving process must not hold what only the CLI, migrations or other
backends need.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from orchard.db.migrate import upgrade
from orchard.settings import Settings
from tests.conftest import NO_UPSTREAMS, free_port, server_env

# Loaded only by the CLI (typer, rich, click), by migrations (alembic), by the
# S3 backend (boto3, botocore) or for stored upstream credentials (cryptography).
NOT_IN_THE_SERVER = ("typer", "rich", "click", "alembic", "boto3", "botocore", "cryptography")


def settings_for(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, admin_password="serve-process-password", **NO_UPSTREAMS)


def test_default_serve_is_a_single_process(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "orchard.cli.main", "serve", "--port", str(port)],
            env=server_env(settings_for(tmp_path)),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, log.read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        children = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
        assert children == [], f"orchard serve started child processes {children}"
        cmdline = Path(f"/proc/{process.pid}/cmdline").read_bytes().split(b"\0")
        assert b"orchard.server" in cmdline  # the CLI gave way to the lean server process
        # granian's allocator was configured before granian loaded: its
        # background threads return freed pages once traffic stops.
        threads = [t.read_text().strip() for t in Path(f"/proc/{process.pid}/task").glob("*/comm")]
        assert "jemalloc_bg_thd" in threads, threads
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(15)
    output = log.read_text()
    assert code == 0, output
    assert f"Orchard listening on http://127.0.0.1:{port}" in output


def test_the_serving_process_loads_no_cli_migration_or_s3_library(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    upgrade(settings, "head")
    probe = (
        "import asyncio, sys\n"
        "from orchard.server import create_app\n"
        "import granian.server.embed\n"
        "app = create_app()\n"
        "async def main():\n"
        "    async with app.router.lifespan_context(app):\n"
        "        pass\n"
        "asyncio.run(main())\n"
        f"print('loaded:', *[m for m in {NOT_IN_THE_SERVER!r} if m in sys.modules])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        env=server_env(settings),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    loaded = [line for line in result.stdout.splitlines() if line.startswith("loaded:")]
    assert loaded == ["loaded:"], result.stdout
