"""The application factory: ``create_app(settings) -> FastAPI``.

The lifespan builds the long-lived objects (database, storage, cache, HTTP
client) onto ``app.state`` and closes them on shutdown. A backend that cannot
be reached at start stops the start with the exact setting named; the cache
is the one deliberate exception.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from orchard import __version__, headers, logs
from orchard.accel import AccelRedirect
from orchard.api import (
    artifacts,
    audit,
    auth,
    files,
    health,
    members,
    packages,
    projects,
    search,
    tokens,
    ui,
    uploads,
    upstreams,
    users,
)
from orchard.api.errors import install as install_error_handlers
from orchard.auth.keys import secret_key
from orchard.auth.users import ensure_first_admin
from orchard.cache import create_cache
from orchard.cache.epoch import open_epoch
from orchard.cache.near import NearCache
from orchard.core import uploads as upload_sessions
from orchard.core.bootstrap import ensure_builtin_projects
from orchard.db.session import Database
from orchard.errors import ConfigurationError, OrchardError
from orchard.forwarded import TrustedProxies
from orchard.metrics import MetricsMiddleware
from orchard.near_cache import NearCacheMiddleware
from orchard.protocols import registry
from orchard.protocols.base import Format
from orchard.settings import Settings
from orchard.storage import create_store
from orchard.storage.filesystem import FilesystemStore
from orchard.timeouts import BodyTimeoutMiddleware
from orchard.upstream import stored as upstream_stored
from orchard.upstream.background import Background
from orchard.upstream.client import create_http_client

log = logging.getLogger("orchard.app")

EXPIRY_INTERVAL = 600.0


async def _expire_uploads_forever(app: FastAPI) -> None:
    while True:
        await asyncio.sleep(EXPIRY_INTERVAL)
        try:
            await upload_sessions.expire(app.state.db, app.state.storage)
        except Exception:  # keep the loop alive; the next round retries
            log.exception("expiring upload sessions failed")


def _accel(settings: Settings, storage: object) -> AccelRedirect | None:
    if settings.accel_redirect is None:
        return None
    if not isinstance(storage, FilesystemStore):
        raise ConfigurationError(
            "ORCHARD_ACCEL_REDIRECT needs blobs on the filesystem; with S3 storage, "
            "ORCHARD_S3_PRESIGNED_REDIRECT sends clients to the bucket instead"
        )
    return AccelRedirect(settings.accel_redirect, storage.root)


async def _open_backends(app: FastAPI, settings: Settings) -> None:
    db = Database(settings)
    try:
        await db.check()
    except OrchardError as exc:
        await db.close()
        raise ConfigurationError(
            f"ORCHARD_DATABASE_URL: cannot connect to the database ({exc.message})"
        ) from exc
    try:
        storage = create_store(settings)
        accel = _accel(settings, storage)  # refuses a setting that cannot work, before any I/O
        await storage.check()
    except OrchardError as exc:
        await db.close()
        if isinstance(exc, ConfigurationError):
            raise
        raise ConfigurationError(f"ORCHARD_STORAGE_URL: {exc.message}") from exc
    if isinstance(app, OrchardApp):
        app.accel = accel
    app.state.db = db
    upstream_stored.prepare(db.engine.dialect)
    app.state.storage = storage
    app.state.cache = create_cache(settings)
    if settings.redis_url and not (await app.state.cache.status()).get("connected"):
        log.warning("Redis at ORCHARD_REDIS_URL is unreachable; serving without the cache")
    app.state.http = create_http_client(settings)
    if isinstance(app, OrchardApp):
        app.background = app.state.http.background
    epoch = open_epoch(db)  # committed content changes drop the near cache (cache/epoch.py)
    if epoch is None:
        log.info("no content epoch to watch (in-memory database): the near cache stays empty")
    app.state.near.watch(epoch)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    anyio.to_thread.current_default_thread_limiter().total_tokens = settings.http_worker_threads
    await _open_backends(app, settings)
    app.state.secret_key = secret_key(settings)
    await ensure_builtin_projects(app.state.db)
    await ensure_first_admin(app.state.db, settings)
    if settings.dev:
        from orchard.core.seed import seed_if_empty

        await seed_if_empty(app.state.db, app.state.storage)
    formats: Sequence[Format] = app.state.formats
    for fmt in formats:
        for hook in fmt.on_start:
            await hook(app)
    expiry = asyncio.create_task(_expire_uploads_forever(app))
    from orchard.server import release_freed_memory_forever

    trimmer = asyncio.create_task(release_freed_memory_forever())
    log.info(
        "orchard started",
        extra={
            "event": "start",
            "version": __version__,
            "database": app.state.db.dialect,
            "storage": app.state.storage.name,
            "cache": app.state.cache.backend,
            "pid": os.getpid(),
        },
    )
    try:
        yield
    finally:
        expiry.cancel()
        trimmer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await expiry
        with contextlib.suppress(asyncio.CancelledError):
            await trimmer
        for fmt in reversed(formats):
            for hook in fmt.on_stop:
                await hook(app)
        await app.state.near.close()
        upstream = getattr(app.state, "upstream", None)
        if upstream is not None:
            await upstream.settle()
        await app.state.http.aclose()
        await app.state.cache.close()
        await app.state.storage.close()
        await app.state.db.close()


class OrchardApp(FastAPI):
    """FastAPI with the answer-wide wrappers (security headers, trusted
    proxies, accel) applied once per request before its middleware stack."""

    accel: AccelRedirect | None = None  # blobs sent by the front web server (accel.py)
    proxies = TrustedProxies("")  # whose X-Forwarded-* to believe (forwarded.py)
    background: Background | None = None  # deferred upstream work: waits while requests arrive

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        if self.background is not None:
            self.background.note_request()
        send = headers.secure(send, scope)  # nosniff, CSP, …: on every answer (headers.py)
        relayed = self.proxies.relayed(scope)  # takes the client a trusted proxy forwarded
        if relayed and self.accel is not None and self.accel.wanted(scope):
            send = self.accel.wrap(send)
        await super().__call__(scope, receive, send)


def create_app(
    settings: Settings | None = None, formats: Sequence[Format] = registry.FORMATS
) -> FastAPI:
    """The app, serving the ``formats`` of the table (``protocols/registry.py``;
    tests may add a format of their own)."""
    settings = settings or Settings()
    logs.configure(settings.log_level, settings.log_json)
    app = OrchardApp(
        title="Orchard",
        version=__version__,
        description="Content-addressed artifact repository: projects, packages, versions, files.",
        lifespan=lifespan,
        openapi_url="/api/v1/openapi.json",
        docs_url=None,  # served below, with a policy of its own (headers.py)
        redoc_url=None,
        # Orchard's metrics are its own (metrics.py); FastAPI's OpenTelemetry
        # hooks, off, cost no check per request (6 µs of a 15 µs near-cache hit).
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.formats = tuple(formats)
    app.proxies = TrustedProxies(settings.forwarded_allow_ips)
    app.state.near = NearCache(settings.cache_ttl_local, settings.cache_local_max_bytes)
    install_error_handlers(app)
    # Protocol routes first: the hot path of pip and uv should not walk the
    # whole REST API's route table on every request.
    for fmt in formats:
        app.include_router(fmt.router_for(settings))
    for module in (
        projects,
        packages,
        files,
        artifacts,
        uploads,
        search,
        audit,
        auth,
        users,
        tokens,
        members,
        upstreams,
    ):
        app.include_router(module.router, prefix="/api/v1")
    app.add_api_route(
        "/api/v1/docs",
        lambda: headers.docs_page("/api/v1/openapi.json", "Orchard - Swagger UI"),
        methods=["GET"],
        include_in_schema=False,
    )
    app.include_router(health.router)
    app.add_middleware(MetricsMiddleware, max_body=settings.max_upload_size)
    app.add_middleware(BodyTimeoutMiddleware, timeout=settings.server_body_timeout)
    # Outermost: warm anonymous protocol reads are answered before the rest.
    app.add_middleware(NearCacheMiddleware, near=app.state.near)
    ui.install(app)  # last: the web UI's catch-all never shadows a route
    return app


def app_from_env() -> FastAPI:
    """Factory for ASGI servers (granian/uvicorn ``--factory``)."""
    return create_app(Settings())
