"""Slow clients cost one connection each, never the server (issue 15, point 3).

A real ``orchard serve`` on loopback and 1,000 slow connections of one kind
at a time: readers of a large download that take a KiB a second, clients
that send their headers a line a second, uploads that trickle a KiB a
second. Meanwhile ``/health`` and a warm PyPI index page, each on a new
connection, answer within a second, and the server's resident memory stays
bounded. The timeouts are checked too: headers that never end, an idle
keep-alive connection and an upload that stalls are cut off, the stalled
upload with a 408 and without leaving its staged bytes behind. The slow
readers and the trickling uploads run a second time with nginx in front, as
docs/operations.md advises for crowds of them: there both Orchard and nginx
stay within 50 MB.

Before the fix granian's embedded server took 128 requests at once (its
backlog default) and kept a client 30 s to send its headers; bodies had no
timeout at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from orchard.settings import Settings
from tests.conftest import STACK, LiveServer, insert_admin_token, server_env
from tests.pypi_support import make_wheel, upload_form

N = int(os.environ.get("ORCHARD_TEST_SLOW_CLIENTS", "1000"))  # slow connections of each kind
PROBE_LIMIT = 1.0  # seconds /health and a warm index page may take meanwhile
HEADER_TIMEOUT = 4.0  # ORCHARD_SERVER_HEADER_TIMEOUT of the server under test
KEEPALIVE_TIMEOUT = 3.0
BODY_TIMEOUT = 3.0
# Seconds for all N slow downloads to start. On S3 each one is a GET to moto,
# which runs in this very process and shares its core with the clients.
START_LIMIT = 20.0 if STACK == "embedded" else 60.0
# Growth of the server's resident memory allowed while N slow clients of one
# kind are connected. The issue asks for 50 MB; measured on 2026-12-06 (two
# cores shared with other test runs) with 1,000 clients:
# - header senders: a few MB; the bound holds (no request reaches
#   the application until its headers are complete).
# - slow readers with nginx in front (docs/nginx/orchard.conf, X-Accel):
#   Orchard +42 MB (the burst of 1,000 redirects answered at once), nginx
#   +17 MB; the bound holds for both.
# - trickling uploads with nginx in front (request buffering on): Orchard
#   +0 MB (nginx keeps each body, 8 KiB in memory and the rest in a file, and
#   sends it only once whole), nginx +16 to +17 MB, on both stacks; the
#   issue's bound holds for both. When all 1,000 end at once Orchard gets
#   1,000 fast uploads together: +134 to +173 MB at the peak embedded, +96 to
#   +102 MB production (recorded, not bounded: fast uploads are not slow clients),
#   all stored within 16 to 39 s.
# - trickling uploads, Orchard alone: 71 to 75 MB, NOT within 50 MB. Every request under
#   way in the application costs about 65 KB: some 45 KB of Python objects
#   (tracemalloc with 200 uploads: 12 MB traced, spread over the frames and
#   closures of FastAPI's dependencies, Starlette's middlewares and
#   exception handlers, the body timeout, the SQLAlchemy session, the
#   staging writer; no single holder to cut), the rest granian's connection.
#   granian's HTTP/1 buffer barely moves it: 74 MB at 64 KiB, 74 at 16 KiB,
#   64 at 8 KiB.
# - slow readers of a file on disk, Orchard alone: about 310 MB, NOT within
#   50 MB. granian sends the file itself (ASGI pathsend) and keeps some 300 KB
#   of it per connection whatever Orchard sets (it reads files in 128 KiB
#   pieces; its HTTP/1 buffer: 680 MB at granian's default of 408 KiB, 320 MB
#   at 64 KiB, 310 MB at its minimum of 8 KiB). Sending the file from Python
#   instead, in pieces granian's send awaits for, costs the 65 KB above plus
#   the pieces queued: +113 MB with 16 KiB pieces (+103 MB growing them to
#   1 MiB once 1 MiB has gone out), and it halves large-file throughput under
#   concurrency (8 curls of a 100 MB file: pathsend 0.72 to 0.95x nginx,
#   1 MiB pieces 0.41 to 0.52x, 16 KiB pieces 0.07x). Crowds of slow readers
#   are nginx's job (the test behind nginx above).
# - slow readers of a download from S3: 108 to 174 MB over four runs with 16 KiB
#   reads (the 65 KB per request plus about eight pieces queued per connection;
#   1 MiB reads held the whole 2 MB object each: +1,048 MB).
MB = 1024 * 1024
RSS_BOUND = {
    "header senders": 50 * MB,
    "trickling uploads": 100 * MB,
    "slow download readers": (400 if STACK == "embedded" else 250) * MB,
    "slow download readers behind nginx": 50 * MB,
    "trickling uploads behind nginx": 50 * MB,
}

# nginx in front (the worker's and master's growth while it sends the file to N slow readers).
NGINX_BOUND = 50 * MB

PAGE = "/pypi/team/simple/demo-pkg/"
ROOT = Path(__file__).resolve().parents[2]
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
ACCEL_PREFIX = "/_orchard/blobs/"
BIG_URL = "/api/v1/project/team/packages/big/versions/1.0/files/big.bin"
# Large next to what the server may hold per slow reader. On S3, moto (the
# test's S3 server, in this process) keeps a copy of the object per open GET:
# a smaller file keeps 1,000 of them affordable.
BIG = os.urandom((8 if STACK == "embedded" else 2) * 1024 * 1024 + 123)
UPLOAD_URL = "/api/v1/project/team/packages/slow/versions/1.0/files/{i}.bin"
UPLOAD_SIZE = 256 * 1024
HEAD_START = 16 * 1024  # sent at once by an upload behind nginx, then a KiB a second


def raise_open_file_limit(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= wanted:
        return
    if hard != resource.RLIM_INFINITY and hard < wanted:
        pytest.skip(f"needs {wanted} open files, the hard limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@dataclass
class Server:
    live: LiveServer
    port: int
    data_dir: Path
    baseline: int = 0  # resident bytes once warm
    notes: list[str] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.live.process.pid

    def staged_files(self) -> list[Path]:
        return [
            p
            for p in self.data_dir.rglob("*")
            if p.is_file() and any(part in (".staging", "staging") for part in p.parts)
        ]


@pytest.fixture
def server(stack_settings: Settings, tmp_path: Path) -> Iterator[Server]:
    with serving(stack_settings, tmp_path) as srv:
        yield srv


@contextlib.contextmanager
def serving(settings: Settings, tmp_path: Path, **extra_env: str) -> Iterator[Server]:
    raise_open_file_limit(4 * N + 1024)  # the server subprocess inherits it
    log = tmp_path / "server.log"
    port = _free_port()
    env = server_env(settings)
    env |= {
        "ORCHARD_SERVER_HEADER_TIMEOUT": str(HEADER_TIMEOUT),
        "ORCHARD_SERVER_KEEPALIVE_TIMEOUT": str(KEEPALIVE_TIMEOUT),
        "ORCHARD_SERVER_BODY_TIMEOUT": str(BODY_TIMEOUT),
        "ORCHARD_LOG_JSON": "false",
        **extra_env,
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "orchard.cli.main", "serve", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    live = LiveServer(url, process, log)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, log.read_text()
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        live.token = insert_admin_token(settings)
        _populate(live)
        time.sleep(1.5)  # let the allocators return what the set-up used
        srv = Server(live, port, settings.data_dir)
        srv.baseline = rss(process.pid)
        yield srv
        print(f"--- {STACK}: " + "; ".join(srv.notes))
    finally:
        process.terminate()
        try:  # a short grace: the slow connections are gone, nothing is worth waiting for
            process.wait(3)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        print(f"--- end of {log} ---\n{log.read_text(errors='replace')[-3000:]}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _populate(live: LiveServer) -> None:
    """A public project with a wheel (its index page warmed) and a large file."""
    with httpx.Client(base_url=live.url, timeout=60, headers=live.auth) as http:
        r = http.post("/api/v1/projects", json={"name": "team", "upstream": False})
        assert r.status_code == 201, r.text
        filename, content, _ = make_wheel("Demo.Pkg", "1.0")
        r = http.post("/pypi/team/", **upload_form(filename, content, "Demo.Pkg", "1.0"))
        assert r.status_code == 200, r.text
        r = http.put(BIG_URL, content=BIG)
        assert r.status_code == 201, r.text
    with httpx.Client(base_url=live.url, timeout=60) as anon:
        for _ in range(2):
            assert anon.get(PAGE).status_code == 200
            assert len(anon.get(BIG_URL).content) == len(BIG)


# --- measuring --------------------------------------------------------------------------------


@dataclass
class Probes:
    latencies: list[float] = field(default_factory=list)
    peak_rss: int = 0


async def probe(
    srv: Server,
    probes: Probes,
    rounds: int = 4,
    url: str | None = None,
    sample: Callable[[], object] = lambda: None,
) -> None:
    """``/health`` and the warm index page, each on a new connection (to
    ``url``, else straight to the server); ``sample()`` once a round."""
    limits = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=url or srv.live.url, limits=limits, timeout=30) as http:
        for _ in range(rounds):
            for path in ("/health", PAGE):
                started = time.monotonic()
                r = await http.get(path)
                probes.latencies.append(time.monotonic() - started)
                assert r.status_code == 200, (path, r.status_code, r.text[:300])
            probes.peak_rss = max(probes.peak_rss, rss(srv.pid))
            sample()
            await asyncio.sleep(0.25)


def check(srv: Server, kind: str, probes: Probes) -> None:
    growth = probes.peak_rss - srv.baseline
    slowest = max(probes.latencies)
    srv.notes.append(
        f"{N} {kind}: slowest probe {slowest:.3f} s "
        f"({' '.join(f'{t:.2f}' for t in probes.latencies)}), RSS {srv.baseline / 2**20:.1f} "
        f"-> {probes.peak_rss / 2**20:.1f} MB (+{growth / 2**20:.1f})"
    )
    assert slowest < PROBE_LIMIT, srv.notes[-1]
    assert growth < RSS_BOUND[kind] * N // 1000, srv.notes[-1]


async def connect(
    port: int, rcvbuf: int | None = None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:  # before connecting, so the window starts small
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.setblocking(False)
    try:
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    except BaseException:
        sock.close()
        raise
    return await asyncio.open_connection(sock=sock, limit=4096)


async def wait_until(done: Callable[[], bool], seconds: float) -> float:
    """Seconds until ``done()`` (checked ten times a second), at most ``seconds``."""
    began = time.monotonic()
    for _ in range(int(seconds * 10) + 1):
        if done():
            break
        await asyncio.sleep(0.1)
    return time.monotonic() - began


@contextlib.asynccontextmanager
async def crowd(clients: list[asyncio.Task[None]]) -> AsyncIterator[None]:
    try:
        yield
    finally:
        for task in clients:
            task.cancel()
        await asyncio.gather(*clients, return_exceptions=True)


async def open_gradually(start: object, count: int) -> list[asyncio.Task[None]]:
    """``count`` tasks of ``start()``, 100 at a time (like a fleet of CI jobs)."""
    tasks: list[asyncio.Task[None]] = []
    for i in range(count):
        tasks.append(asyncio.create_task(start()))  # type: ignore[operator]
        if i % 100 == 99:
            await asyncio.sleep(0.05)
    return tasks


# --- the tests --------------------------------------------------------------------------------


async def test_slow_download_readers(server: Server) -> None:
    probes = await read_slowly(server, server.port)
    check(server, "slow download readers", probes)


async def read_slowly(
    server: Server,
    port: int,
    probe_url: str | None = None,
    sample: Callable[[], object] = lambda: None,
) -> Probes:
    """N clients reading the large download at a KiB a second from ``port``;
    the probes while they all read."""
    started = 0
    request = f"GET {BIG_URL} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()

    async def slow_reader() -> None:
        nonlocal started
        reader, writer = await connect(port, rcvbuf=4096)
        try:
            writer.write(request)
            status = await reader.readline()
            assert status.startswith(b"HTTP/1.1 200"), status
            started += 1
            for _ in range(120):  # a KiB a second, for at most two minutes
                if not await reader.read(1024):
                    return
                await asyncio.sleep(1)
        finally:
            writer.close()

    probes = Probes()
    clients = await open_gradually(slow_reader, N)
    async with crowd(clients):
        took = await wait_until(lambda: started == N, START_LIMIT)
        assert started == N, f"only {started} of {N} downloads started"
        server.notes.append(f"{N} downloads started in {took:.1f} s")
        await asyncio.sleep(1)  # the server fills what it buffers per connection
        await probe(server, probes, url=probe_url, sample=sample)
    return probes


@pytest.mark.skipif(STACK != "embedded", reason="nginx sends blobs from a local folder")
async def test_slow_download_readers_behind_nginx(stack_settings: Settings, tmp_path: Path) -> None:
    """The deployment docs/operations.md advises for crowds of slow readers:
    nginx in front (docs/nginx/orchard.conf) sends the file, and Orchard,
    having answered with an X-Accel-Redirect, holds nothing for the reader."""
    env = {"ORCHARD_ACCEL_REDIRECT": ACCEL_PREFIX}
    with serving(stack_settings, tmp_path, **env) as srv, nginx_in_front(srv, tmp_path) as front:
        nginx_before = front.rss()
        url = f"http://127.0.0.1:{front.port}"
        probes = await read_slowly(srv, front.port, probe_url=url, sample=front.rss)
        srv.notes.append(
            f"nginx's RSS (master, worker) {nginx_before / MB:.1f} -> {front.peak_rss / MB:.1f} MB"
            f" (+{(front.peak_rss - nginx_before) / MB:.1f})"
        )
        check(srv, "slow download readers behind nginx", probes)
        assert front.peak_rss - nginx_before < NGINX_BOUND * N // 1000, srv.notes[-1]


async def test_trickling_uploads_behind_nginx(stack_settings: Settings, tmp_path: Path) -> None:
    """The same uploads with nginx in front (docs/nginx/orchard.conf): nginx
    reads each body whole, 8 KiB in memory and the rest in a file, while
    Orchard holds nothing for it (each upload sends 16 KiB at once, so that
    its file is open while they trickle); once all of them end at once, nginx sends
    each to Orchard at loopback speed and every upload is stored."""
    with serving(stack_settings, tmp_path) as srv, nginx_in_front(srv, tmp_path) as front:
        token = srv.live.token
        finish = asyncio.Event()
        opened = 0
        answers: list[bytes] = []
        nginx_before = front.rss()

        async def trickle(i: int) -> None:
            nonlocal opened
            reader, writer = await connect(front.port)
            try:
                writer.write(
                    f"PUT {UPLOAD_URL.format(i=i)} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    f"Authorization: Bearer {token}\r\nContent-Length: {UPLOAD_SIZE}\r\n"
                    "Expect: 100-continue\r\n\r\n".encode()
                )
                # nginx asks for the body itself: it keeps it before Orchard sees the request.
                assert await reader.readuntil(b"\r\n\r\n") == b"HTTP/1.1 100 Continue\r\n\r\n"
                # A head start past nginx's 8 KiB in memory: every body is in its file already.
                writer.write(b"x" * HEAD_START)
                sent = HEAD_START
                await writer.drain()
                opened += 1
                while not finish.is_set() and sent < UPLOAD_SIZE - 1024:
                    writer.write(b"x" * 1024)
                    sent += 1024
                    await writer.drain()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(finish.wait(), 1)
                writer.write(b"x" * (UPLOAD_SIZE - sent))
                await writer.drain()
                answers.append(await asyncio.wait_for(reader.readuntil(b"\r\n"), 120))
            finally:
                writer.close()

        counter = iter(range(N))
        probes = Probes()
        clients = await open_gradually(lambda: trickle(next(counter)), N)
        async with crowd(clients):
            took = await wait_until(lambda: opened == N, START_LIMIT)
            assert opened == N, f"only {opened} of {N} uploads were taken"
            srv.notes.append(f"{N} uploads under way through nginx in {took:.1f} s")
            await asyncio.sleep(1)
            spilled = front.files_open_under(tmp_path / "nginx" / "uploads")
            assert spilled == N, f"{spilled} of {N} bodies in nginx's files"
            await probe(srv, probes, url=f"http://127.0.0.1:{front.port}", sample=front.rss)
            nginx_peak = front.peak_rss
            srv.notes.append(
                f"nginx's RSS (master, worker) {nginx_before / MB:.1f} -> {nginx_peak / MB:.1f} MB"
                f" (+{(nginx_peak - nginx_before) / MB:.1f})"
            )
            check(srv, "trickling uploads behind nginx", probes)
            assert nginx_peak - nginx_before < NGINX_BOUND * N // 1000, srv.notes[-2]

            # All of them end at once: nginx hands each whole body to Orchard.
            burst = Probes()
            finish.set()
            began = time.monotonic()
            while len(answers) < N and time.monotonic() - began < 120:
                burst.peak_rss = max(burst.peak_rss, rss(srv.pid))
                front.rss()
                await asyncio.sleep(0.1)
            took = time.monotonic() - began
            srv.notes.append(
                f"{len(answers)} uploads ended at once, answered in {took:.1f} s:"
                f" Orchard's RSS peak +{(burst.peak_rss - srv.baseline) / MB:.1f} MB,"
                f" nginx's +{(front.peak_rss - nginx_before) / MB:.1f} MB"
            )
        assert [a for a in answers if not a.startswith(b"HTTP/1.1 201")] == []
        assert len(answers) == N, srv.notes[-1]
        assert srv.staged_files() == []
        assert "Traceback" not in srv.live.log.read_text()


@dataclass
class Nginx:
    port: int
    process: subprocess.Popen[bytes]
    peak_rss: int = 0

    def rss(self) -> int:
        """The resident memory of nginx's processes (master and worker)."""
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        pids = [self.process.pid, *map(int, children.read_text().split())]
        total = sum(rss(pid) for pid in pids)
        self.peak_rss = max(self.peak_rss, total)
        return total

    def files_open_under(self, folder: Path) -> int:
        """Files nginx's worker holds open under ``folder`` (its request body
        files, unlinked as soon as created)."""
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        count = 0
        for pid in children.read_text().split():
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(FileNotFoundError):  # closed meanwhile
                    count += os.readlink(fd).startswith(f"{folder}/")
        return count


@contextlib.contextmanager
def nginx_in_front(srv: Server, tmp_path: Path) -> Iterator[Nginx]:
    """nginx with the operators' server block (docs/nginx/orchard.conf)."""
    assert os.access(NGINX, os.X_OK), "nginx is not installed (.ci/run installs it)"
    run = tmp_path / "nginx"
    run.mkdir()
    port = _free_port()
    block = (ROOT / "docs" / "nginx" / "orchard.conf").read_text()
    block = (
        block.replace("@LISTEN@", f"127.0.0.1:{port}")
        .replace("@ORCHARD@", f"127.0.0.1:{srv.port}")
        .replace("@BLOBS@", str(srv.data_dir / "blobs"))
        .replace("@UPLOADS@", str(run / "uploads"))
    )
    temp = "\n".join(
        f"    {kind}_temp_path {run}/{kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    (run / "nginx.conf").write_text(
        f"user root;\nworker_processes 1;\npid {run}/nginx.pid;\n"
        f"worker_rlimit_nofile {4 * N + 1024};\n"
        f"error_log {run}/error.log warn;\nevents {{ worker_connections {2 * N + 256}; }}\n"
        f"http {{\n    access_log off;\n{temp}\n"
        f"    default_type application/octet-stream;\n{block}\n}}\n"
    )
    process = subprocess.Popen(
        [
            NGINX,
            "-e",
            str(run / "error.log"),
            "-p",
            str(run),
            "-c",
            str(run / "nginx.conf"),
            "-g",
            "daemon off;",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    front = Nginx(port, process)
    try:
        deadline = time.monotonic() + 10
        while True:
            assert process.poll() is None, (run / "error.log").read_text()
            try:
                httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "nginx did not start"
                time.sleep(0.1)
        r = httpx.get(f"http://127.0.0.1:{port}{BIG_URL}", timeout=30)
        assert r.content == BIG
        time.sleep(0.5)
        front.peak_rss = 0
        yield front
    finally:
        process.terminate()
        process.wait(10)
        print(f"--- nginx error log ---\n{(run / 'error.log').read_text(errors='replace')[-3000:]}")


async def test_headers_a_line_a_second(server: Server) -> None:
    closed: list[float] = []
    opened = 0

    async def slow_headers() -> None:
        nonlocal opened
        reader, writer = await connect(server.port)
        began = time.monotonic()
        opened += 1
        try:
            writer.write(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            for i in range(60):
                try:
                    data = await asyncio.wait_for(reader.read(4096), 1.0)
                except TimeoutError:
                    writer.write(f"X-Slow-{i}: {i}\r\n".encode())
                    continue
                if not data:
                    break
            closed.append(time.monotonic() - began)
        except ConnectionError:  # closed with a reset
            closed.append(time.monotonic() - began)
        finally:
            writer.close()

    probes = Probes()
    clients = await open_gradually(slow_headers, N)
    async with crowd(clients):
        await probe(server, probes, rounds=3)
        assert opened == N
        # The header read timeout closes every one of them.
        await wait_until(lambda: len(closed) == N, HEADER_TIMEOUT + 5)
    check(server, "header senders", probes)
    assert len(closed) == N, f"{N - len(closed)} slow header senders still connected"
    # The shorter of the header and keep-alive timeouts (see orchard.server.Limits).
    assert max(closed) < KEEPALIVE_TIMEOUT + 2, max(closed)
    await idle_keepalive_connection_is_closed(server)


async def idle_keepalive_connection_is_closed(server: Server) -> None:
    reader, writer = await connect(server.port)
    try:
        writer.write(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        length = next(
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        await reader.readexactly(length)
        began = time.monotonic()
        assert await asyncio.wait_for(reader.read(1), KEEPALIVE_TIMEOUT + 5) == b""
        assert time.monotonic() - began < KEEPALIVE_TIMEOUT + 0.8  # not HEADER_TIMEOUT
    finally:
        writer.close()


async def test_trickling_uploads_then_stalled(server: Server) -> None:
    """Uploads that send a KiB a second stay; once they stop sending, each is
    answered 408 after the body timeout and its staged bytes are gone."""
    token = server.live.token
    sending = asyncio.Event()
    sending.set()
    answers: list[bytes] = []
    opened = 0

    async def trickle(i: int) -> None:
        nonlocal opened
        reader, writer = await connect(server.port)
        try:
            writer.write(
                f"PUT {UPLOAD_URL.format(i=i)} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Authorization: Bearer {token}\r\nContent-Length: {UPLOAD_SIZE}\r\n"
                "Expect: 100-continue\r\n\r\n".encode()
            )
            # The server asks for the body once it has authorized the upload.
            assert await reader.readuntil(b"\r\n\r\n") == b"HTTP/1.1 100 Continue\r\n\r\n"
            opened += 1
            for _ in range(60):
                if not sending.is_set():
                    break
                writer.write(b"x" * 1024)
                await writer.drain()
                await asyncio.sleep(1)
            answers.append(await asyncio.wait_for(reader.read(4096), BODY_TIMEOUT + 10))
        finally:
            writer.close()

    counter = iter(range(N))
    probes = Probes()
    clients = await open_gradually(lambda: trickle(next(counter)), N)
    async with crowd(clients):
        took = await wait_until(lambda: opened == N, START_LIMIT)
        assert opened == N, f"only {opened} of {N} uploads were taken"
        server.notes.append(f"{N} uploads under way in {took:.1f} s")
        await asyncio.sleep(1)
        await probe(server, probes)
        sending.clear()
        stopped = time.monotonic()
        await asyncio.wait(clients, timeout=BODY_TIMEOUT + 12)
        waited = time.monotonic() - stopped
    check(server, "trickling uploads", probes)
    statuses = [a.split(b"\r\n", 1)[0] for a in answers]
    assert len(statuses) == N, f"{N - len(statuses)} stalled uploads got no answer in {waited} s"
    assert set(statuses) == {b"HTTP/1.1 408 Request Timeout"}, set(statuses)
    assert server.staged_files() == []
    log = server.live.log.read_text()
    assert "Traceback" not in log
    assert log.count("request body stalled") == N
