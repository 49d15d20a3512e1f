"""The memory floor of a Python serving process, by stack, next to Orchard.

Each variant is a one-route application (one SQL query per request, as a
registry read does) under granian's embedded server, the way Orchard runs:

  A  FastAPI + SQLAlchemy 2 async ORM (aiosqlite) + pydantic-settings   (Orchard's stack)
  B  Starlette + SQLAlchemy 2 async Core (aiosqlite) + pydantic-settings
  C  Starlette + the standard library's sqlite3 + pydantic-settings
  D  a bare ASGI callable + sqlite3 (no framework, no pydantic)

Every variant loads prometheus-client. ``orchard`` is the real server
(``python -m orchard.server`` on a fresh embedded data directory), loaded at
``/health``. For each: VmRSS once it answers, then after a bounded load
(``wrk -t2 -c32 -d5``; without wrk, 2,000 sequential requests). It answers
one question: how much of the issue's 80 MB bound the chosen libraries leave
to the product.

    .venv/bin/python bench/stack_floor.py [VARIANT ...]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

VARIANTS = ("A", "B", "C", "D", "orchard")
LABELS = {
    "A": "FastAPI + SQLAlchemy ORM async + pydantic-settings",
    "B": "Starlette + SQLAlchemy Core async + pydantic-settings",
    "C": "Starlette + sqlite3 + pydantic-settings",
    "D": "bare ASGI + sqlite3",
    "orchard": "Orchard (python -m orchard.server, embedded stack)",
}
LOAD_SECONDS = 5
FALLBACK_REQUESTS = 2000
START_TIMEOUT = 30.0

ASGIApp = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


# --- the variants (run in the child process) ------------------------------------------------


def _variant_app(variant: str, db: str) -> ASGIApp:
    if variant in "ABC":
        from pydantic_settings import BaseSettings

        class Settings(BaseSettings):
            database: str = db

        db = Settings().database
    import prometheus_client  # noqa: F401  (every variant exports metrics)

    if variant == "A":
        return _fastapi_orm(db)
    if variant == "B":
        return _starlette_core(db)
    return _sqlite3_app(db, framework=variant == "C")


def _fastapi_orm(db: str) -> ASGIApp:
    from fastapi import FastAPI
    from sqlalchemy import Integer, String, text
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.orm import DeclarativeBase, mapped_column

    class Base(DeclarativeBase):
        pass

    class Item(Base):  # a mapped model, as every ORM application has
        __tablename__ = "item"
        # (unannotated: this module's annotations are strings of a local scope)
        id = mapped_column(Integer, primary_key=True)
        name = mapped_column(String(100))

    app = FastAPI()
    engine = create_async_engine(f"sqlite+aiosqlite:///{db}")

    @app.get("/x/{name}")
    async def read(name: str) -> dict[str, Any]:
        async with engine.connect() as conn:
            return {"name": name, "one": (await conn.execute(text("select 1"))).scalar()}

    return app


def _starlette_core(db: str) -> ASGIApp:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    engine = create_async_engine(f"sqlite+aiosqlite:///{db}")

    async def read(request: Request) -> JSONResponse:
        async with engine.connect() as conn:
            one = (await conn.execute(text("select 1"))).scalar()
        return JSONResponse({"name": request.path_params["name"], "one": one})

    return Starlette(routes=[Route("/x/{name}", read)])


def _sqlite3_app(db: str, framework: bool) -> ASGIApp:
    import sqlite3

    conn = sqlite3.connect(db, check_same_thread=False)

    def one() -> Any:
        return conn.execute("select 1").fetchone()[0]

    if framework:
        from starlette.applications import Starlette
        from starlette.requests import Request
        from starlette.responses import JSONResponse
        from starlette.routing import Route

        async def read(request: Request) -> JSONResponse:
            value = await asyncio.to_thread(one)
            return JSONResponse({"name": request.path_params["name"], "one": value})

        return Starlette(routes=[Route("/x/{name}", read)])

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = json.dumps({"name": scope["path"], "one": await asyncio.to_thread(one)}).encode()
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


def serve_variant(variant: str, port: int, db: str) -> None:
    sys.modules.setdefault("pydantic.v1", None)  # type: ignore[arg-type]  # as orchard.server does
    from granian.constants import Interfaces
    from granian.server.embed import Server

    server = Server(
        lambda: _variant_app(variant, db),
        factory=True,
        address="127.0.0.1",
        port=port,
        interface=Interfaces.ASGI,
        log_access=False,
        runtime_blocking_threads=2,
    )
    asyncio.run(server.serve())


# --- the driver -------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _wait_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"no answer from {url} within {START_TIMEOUT:.0f} s")


def _load(url: str) -> str:
    wrk = shutil.which("wrk")
    if wrk:
        out = subprocess.run(
            [wrk, "-t2", "-c32", f"-d{LOAD_SECONDS}", url],
            capture_output=True,
            text=True,
            timeout=LOAD_SECONDS + 30,
            check=True,
        ).stdout
        rate = next(
            (ln.split()[1] for ln in out.splitlines() if ln.startswith("Requests/sec")), "?"
        )
        return f"wrk {LOAD_SECONDS} s, {rate} req/s"
    for _ in range(FALLBACK_REQUESTS):
        with urllib.request.urlopen(url, timeout=10) as answer:
            answer.read()
    return f"{FALLBACK_REQUESTS} sequential requests"


def _start(variant: str, port: int, tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCHARD_")}
    log = (tmp / f"{variant}.log").open("wb")
    if variant == "orchard":
        data = tmp / "orchard-data"
        env.update(ORCHARD_DATA_DIR=str(data), ORCHARD_LOG_LEVEL="WARNING")
        orchard = Path(sys.executable).with_name("orchard")
        subprocess.run([str(orchard), "db", "upgrade"], env=env, check=True, capture_output=True)
        argv = [sys.executable, "-m", "orchard.server", "--host", "127.0.0.1", "--port", str(port)]
        path = "/health"
    else:
        db = str(tmp / f"{variant}.db")
        argv = [sys.executable, __file__, "--serve", variant, "--port", str(port), "--db", db]
        path = "/x/floor"
    process = subprocess.Popen(
        argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    return process, f"http://127.0.0.1:{port}{path}"


def measure(variant: str, tmp: Path) -> dict[str, Any]:
    process, url = _start(variant, _free_port(), tmp)
    try:
        _wait_ready(url, process)
        time.sleep(1.0)  # let start-up work settle
        idle = _rss_mib(process.pid)
        how = _load(url)
        after = _rss_mib(process.pid)
        return {"variant": variant, "idle": idle, "after": after, "load": how}
    except RuntimeError:
        log = (tmp / f"{variant}.log").read_text(errors="replace")
        print(f"{variant}: the server's log ends:\n{log[-3000:]}", file=sys.stderr)
        raise
    finally:
        _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        with contextlib.suppress(ProcessLookupError):  # already gone
            os.killpg(process.pid, sig)
        try:
            process.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("variants", nargs="*", help=f"any of {', '.join(VARIANTS)} (default: all)")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve_variant(args.serve, args.port, args.db)
        return 0
    unknown = set(args.variants) - set(VARIANTS)
    if unknown:
        parser.error(f"unknown variant(s) {', '.join(sorted(unknown))}; choose from {VARIANTS}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="orchard-floor.") as tmp:
        for variant in args.variants or VARIANTS:
            row = measure(variant, Path(tmp))
            rows.append(row)
            print(
                f"{variant}: idle {row['idle']:.1f} MiB, after load {row['after']:.1f} MiB",
                file=sys.stderr,
            )
    print("| variant | stack | RSS idle MiB | RSS after load MiB | load |")
    print("|---|---|---:|---:|---|")
    for row in rows:
        v = row["variant"]
        print(f"| {v} | {LABELS[v]} | {row['idle']:.1f} | {row['after']:.1f} | {row['load']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
