"""Shared fixtures: the backend stack under test, the app, a live server.

``ORCHARD_TEST_STACK`` picks the stack the API tests run on:

- ``embedded`` (default): SQLite, blobs on disk, in-process cache;
- ``production``: PostgreSQL (a throwaway database on 127.0.0.1:5432),
  S3 (moto's server on a loopback port, a fresh bucket per test) and Redis
  (127.0.0.1:6379, database 14, flushed per test).

CI runs the whole suite once per stack.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from orchard.app import create_app
from orchard.db.migrate import upgrade
from orchard.settings import Settings
from tests import support
from tests.fakes.pypi_upstream import FakePyPI
from tests.fakes.s3server import create_bucket, delete_bucket, start_s3_server

STACK = os.environ.get("ORCHARD_TEST_STACK", "embedded")
PG_ADMIN_URL = os.environ.get("ORCHARD_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_TEST_URL = os.environ.get("ORCHARD_TEST_REDIS", "redis://127.0.0.1:6379/14")

ADMIN_PASSWORD = "admin-password-for-tests"

S3_TEST_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}

# Tests never reach a real registry: no upstream unless a test points one at a fake.
NO_UPSTREAMS = {"upstream_pypi_url": "", "upstream_npm_url": "", "upstream_go_url": ""}

# Settings of the stack → environment variables of a server subprocess.
ENV_FIELDS = ("data_dir", "database_url", "storage_url", "s3_endpoint_url", "redis_url",
              "max_upload_size", "gc_grace", "upload_session_ttl", "base_url", "admin_password",
              "secret_key", "upstream_pypi_url", "upstream_npm_url", "upstream_go_url",
              "offline", "http_connect_timeout", "http_read_timeout", "cache_ttl_index",
              "accel_redirect", "forwarded_allow_ips")


def pytest_report_header() -> str:
    return f"orchard test stack: {STACK}"


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """Endpoint of a moto S3 server; test credentials in the environment."""
    saved = {name: os.environ.get(name) for name in S3_TEST_ENV}
    os.environ.update(S3_TEST_ENV)
    server = start_s3_server()
    try:
        yield server.endpoint_url
    finally:
        server.stop()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database, migrated to head; dropped afterwards."""
    import psycopg

    name = f"orchard_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    url = f"{url}/{name}"
    upgrade(Settings(database_url=url))
    try:
        yield url
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _truncate_pg(url: str) -> None:
    import psycopg

    plain = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(
            "TRUNCATE artifacts, projects, packages, versions, files, artifact_dependencies,"
            " upload_sessions, upload_parts, audit_log, users, api_tokens, web_sessions,"
            " project_members, login_failures, upstream_sources, cached_urls"
            " RESTART IDENTITY CASCADE"
        )


def _flush_redis(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite database, copied for each test (faster than migrating)."""
    data_dir = tmp_path_factory.mktemp("template")
    upgrade(Settings(data_dir=data_dir))
    return data_dir / "orchard.db"


@pytest.fixture
def stack_settings(
    request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path
) -> Iterator[Settings]:
    """Settings for the stack under test, on clean backends."""
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o700)  # as Orchard makes it: no permissions warning per test
    if STACK == "production":
        pg_url: str = request.getfixturevalue("pg_database")
        endpoint: str = request.getfixturevalue("s3_server")
        _truncate_pg(pg_url)
        _flush_redis(REDIS_TEST_URL)
        bucket = f"orchard-{uuid.uuid4().hex[:12]}"
        create_bucket(endpoint, bucket)
        try:
            yield Settings(
                data_dir=data_dir, database_url=pg_url, storage_url=f"s3://{bucket}/blobs",
                s3_endpoint_url=endpoint, redis_url=REDIS_TEST_URL, log_json=True,
                admin_password=ADMIN_PASSWORD, **NO_UPSTREAMS,
            )
        finally:
            delete_bucket(endpoint, bucket)
        return
    shutil.copy(sqlite_template, data_dir / "orchard.db")
    yield Settings(data_dir=data_dir, log_json=True, admin_password=ADMIN_PASSWORD, **NO_UPSTREAMS)


@pytest.fixture
def settings(stack_settings: Settings) -> Settings:
    """Override in a test module to change individual settings."""
    return stack_settings


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[object]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def admin_token(app: object) -> str:
    """A write token of the bootstrapped administrator."""
    from tests.support import make_token

    return await make_token(app, "admin")


@pytest.fixture
async def client(app: object, admin_token: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the in-process app, signed in as the administrator."""
    transport = support.SettlingTransport(app=app)  # type: ignore[arg-type]
    headers = {"Authorization": f"Bearer {admin_token}"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver", headers=headers
    ) as c:
        yield c


@pytest.fixture
async def anon_client(app: object) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the in-process app without credentials."""
    transport = support.SettlingTransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_env(settings: Settings) -> dict[str, str]:
    """Environment for an ``orchard`` subprocess using ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ORCHARD_", "PIP_"))}
    for field in ENV_FIELDS:
        value = getattr(settings, field)
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        if value is not None:
            env[f"ORCHARD_{field.upper()}"] = str(value)
    return env


def insert_admin_token(settings: Settings) -> str:
    """A write token for the bootstrapped ``admin`` (see ``insert_token``)."""
    return insert_token(settings, "admin", "write")


def insert_token(settings: Settings, username: str, scope: str) -> str:
    """A token of ``username``, written straight into the database (for tests
    that talk to a server subprocess)."""
    import secrets as pysecrets

    from sqlalchemy import create_engine, text

    from orchard.auth.tokens import PREFIX, token_hash
    from orchard.db.base import utcnow
    from orchard.db.session import sync_url

    secret = PREFIX + pysecrets.token_urlsafe(32)
    engine = create_engine(sync_url(settings.effective_database_url))
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO api_tokens (user_id, name, token_hash, prefix, scope,"
                    " created_at) SELECT id, :name, :hash, :prefix, :scope, :now"
                    " FROM users WHERE username = :username"
                ),
                {"name": f"live-{secret[-6:]}", "hash": token_hash(secret),
                 "prefix": secret[:12], "scope": scope, "now": utcnow(),
                 "username": username},
            )
    finally:
        engine.dispose()
    return secret


class LiveServer:
    def __init__(self, url: str, process: subprocess.Popen[bytes], log: Path,
                 token: str = "") -> None:
        self.url = url
        self.process = process
        self.log = log
        self.token = token  # an administrator's write token

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def start_live_server(settings: Settings, log: Path) -> LiveServer:
    port = free_port()
    handle = log.open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "orchard.cli.main", "serve", "--port", str(port)],
        env=server_env(settings), stdout=handle, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"orchard serve exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code in (200, 503):
                return LiveServer(url, process, log, insert_admin_token(settings))
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"orchard serve did not start: {log.read_text()[-2000:]}")


@pytest.fixture
def live_server(settings: Settings, tmp_path: Path) -> Iterator[LiveServer]:
    """``orchard serve`` in a subprocess on a free loopback port."""
    server = start_live_server(settings, tmp_path / "server.log")
    try:
        yield server
    finally:
        server.stop()
        # Shown with the report of a failing test only (pytest captures it).
        print(f"--- end of {server.log} ---\n{server.log.read_text(errors='replace')[-4000:]}")


@pytest.fixture
def fake() -> Iterator[FakePyPI]:
    """A fake PyPI upstream over HTTP on 127.0.0.1 (see tests/fakes/pypi_upstream.py)."""
    server = FakePyPI().start()
    try:
        yield server
    finally:
        server.stop()
