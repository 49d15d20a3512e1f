"""Annotated dependencies: what endpoints ask for, built from app.state."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from orchard.auth.principal import Principal, resolve
from orchard.cache.base import Cache
from orchard.core.audit import Actor
from orchard.db.session import Database
from orchard.settings import Settings
from orchard.storage.base import ArtifactStore


async def get_db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


async def get_storage(request: Request) -> ArtifactStore:
    storage: ArtifactStore = request.app.state.storage
    return storage


async def get_cache(request: Request) -> Cache:
    cache: Cache = request.app.state.cache
    return cache


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def client_address(request: Request) -> str:
    return request.client.host if request.client else ""


async def current_principal(request: Request) -> Principal:
    """Who makes the request, resolved once per request (auth/principal.py)."""
    cached: Principal | None = getattr(request.state, "principal", None)
    if cached is None:
        cached = await resolve(request)
        request.state.principal = cached
    return cached


async def current_actor(request: Request) -> Actor:
    return (await current_principal(request)).actor


DbDep = Annotated[Database, Depends(get_db)]
StorageDep = Annotated[ArtifactStore, Depends(get_storage)]
CacheDep = Annotated[Cache, Depends(get_cache)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
CurrentActor = Annotated[Actor, Depends(current_actor)]
