"""/health and /metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from orchard import __version__
from orchard.deps import current_principal
from orchard.errors import OrchardError
from orchard.metrics import CACHE_REQUESTS, REGISTRY
from orchard.upstream.sources import upstream_status

router = APIRouter(tags=["health"])


async def _is_admin(request: Request) -> bool:
    """Whether the caller may see upstream URLs (an administrator, not a
    project-restricted token); bad credentials just make it anonymous here."""
    try:
        principal = await current_principal(request)
    except Exception:  # a health check answers whoever asks
        return False
    return bool(
        principal.authenticated and principal.is_admin and principal.token_projects is None
    )


async def _probe(check: Any) -> dict[str, Any]:
    try:
        await check()
    except OrchardError as exc:
        return {"status": "down", "error": exc.message}
    except Exception as exc:  # a health check must report, not crash
        return {"status": "down", "error": exc.__class__.__name__}
    return {"status": "up"}


@router.get("/health")
async def health(request: Request) -> JSONResponse:
    """Database, storage and cache status; 503 when the database or storage
    is down (the cache is optional)."""
    state = request.app.state
    database = await _probe(state.db.check)
    database["backend"] = state.db.dialect
    storage = await _probe(state.storage.check)
    storage["backend"] = state.storage.name
    cache = await state.cache.status()
    cache["status"] = "up" if cache.get("connected") else "down"
    cache["hits"] = state.cache.stats.hits
    cache["misses"] = state.cache.stats.misses
    near = state.near
    cache["near"] = {"entries": len(near), "hits": near.hits, "ttl": near.ttl}
    settings = state.settings
    pool = {
        "max_connections": settings.http_max_connections,
        "max_keepalive": settings.http_max_keepalive,
        "worker_threads": settings.http_worker_threads,
        "closed": state.http.is_closed,
        "client": state.http.kind,
        **state.http.stats(),
    }
    core_ok = database["status"] == "up" and storage["status"] == "up"
    status = (
        "healthy"
        if core_ok and cache["status"] == "up"
        else ("degraded" if core_ok else "unhealthy")
    )
    try:
        admin = await _is_admin(request)
        upstreams: list[dict[str, Any]] | str = await upstream_status(request.app, urls=admin)
    except Exception as exc:  # the database may be the thing that is down
        upstreams = f"unavailable: {exc.__class__.__name__}"
    body = {
        "status": status,
        "upstreams": upstreams,
        "version": __version__,
        "database": database,
        "storage": storage,
        "cache": cache,
        "http_pool": pool,
    }
    # what it shows depends on who asks: never kept by a cache
    headers = {"Cache-Control": "no-store"}
    return JSONResponse(body, status_code=200 if core_ok else 503, headers=headers)


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    cache = request.app.state.cache
    backend = cache.backend
    # Mirror the cache's own counters into Prometheus at scrape time.
    for result, count in (("hit", cache.stats.hits), ("miss", cache.stats.misses)):
        labels = {"backend": backend, "result": result}
        shown = REGISTRY.get_sample_value("orchard_cache_requests_total", labels) or 0.0
        CACHE_REQUESTS.labels(backend, result).inc(max(0.0, count - shown))
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
