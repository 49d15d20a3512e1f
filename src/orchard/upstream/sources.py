"""Upstream sources: the one from settings (or discovered from the client
tools) and the ones managed in the database, in priority order.

The effective list of a format is cached (category UPSTREAM_SOURCES, in
Redis when configured, so all replicas agree) and dropped on every API write.
The cached list carries credentials only sealed; they are opened when a
request is built, and never logged.
"""

from __future__ import annotations

import base64
import json
import logging
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import anyio.to_thread
from sqlalchemy import select

from orchard.auth.crypto import SecretBox
from orchard.cache.base import Cache, Category
from orchard.db.models import UpstreamSource
from orchard.db.session import Database
from orchard.settings import Settings
from orchard.upstream.discovery import DISCOVERERS
from orchard.upstream.urls import LinkRule, check_upstream_url, mask, parse_file_hosts

log = logging.getLogger("orchard.upstream")

UPSTREAM_FORMATS = ("pypi", "npm", "go")
SETTINGS_PRIORITY = 0  # the settings source; database sources default to 10
_EFFECTIVE = "effective"


@dataclass(frozen=True)
class Source:
    name: str
    format: str
    url: str  # without a trailing slash
    priority: int
    origin: str  # "settings" | "discovered" | "database"
    auth_type: str = "none"
    username: str = ""
    sealed_secret: str = ""
    file_hosts: tuple[str, ...] = ()  # besides its own origin, where its pages may link

    @property
    def rule(self) -> LinkRule:
        """Which of its pages' links are followed."""
        return LinkRule(self.url, self.file_hosts)

    def auth_headers(self, box: SecretBox | None) -> dict[str, str]:
        """The Authorization header for this source ({} without credentials)."""
        if self.auth_type == "none" or not self.sealed_secret or box is None:
            return {}
        secret = box.open(self.sealed_secret)
        if self.auth_type == "bearer":
            return {"Authorization": f"Bearer {secret}"}
        raw = base64.b64encode(f"{self.username}:{secret}".encode()).decode()
        return {"Authorization": f"Basic {raw}"}

    def same_origin(self, url: str) -> bool:
        """Whether credentials of this source may be sent to ``url``."""
        a, b = urlsplit(self.url), urlsplit(url)
        return (a.scheme, a.netloc) == (b.scheme, b.netloc)


_discovered: dict[str, str | None] = {}


async def discovered_url(fmt: str) -> str | None:
    """The client tool's configured registry, looked up once per process."""
    if fmt not in _discovered:
        url = await anyio.to_thread.run_sync(DISCOVERERS[fmt])
        if url:
            try:
                url = check_upstream_url(url, credentials_allowed=True)
            except ValueError as exc:
                log.warning("ignoring the discovered %s upstream %s: it %s", fmt, mask(url), exc)
                url = None
        _discovered[fmt] = url
        log.info("discovered %s upstream: %s", fmt, mask(url) if url else "none")
    return _discovered[fmt]


def _settings_file_hosts(settings: Settings, fmt: str) -> tuple[str, ...]:
    value: str = getattr(settings, f"upstream_{fmt}_file_hosts", "")
    try:
        return parse_file_hosts(value)
    except ValueError as exc:  # settings are validated; a copy may not be
        log.warning("ignoring ORCHARD_UPSTREAM_%s_FILE_HOSTS: %s", fmt.upper(), exc)
        return ()


async def settings_source(settings: Settings, fmt: str) -> Source | None:
    configured: str | None = getattr(settings, f"upstream_{fmt}_url")
    origin = "settings"
    if configured is None:
        configured, origin = await discovered_url(fmt), "discovered"
    if not configured:
        return None
    try:
        url = check_upstream_url(configured, credentials_allowed=True)
    except ValueError as exc:  # settings are validated; a copy may not be
        log.warning("ignoring the %s upstream %s: it %s", fmt, mask(configured), exc)
        return None
    hosts = _settings_file_hosts(settings, fmt)
    return Source(fmt, fmt, url, SETTINGS_PRIORITY, origin, file_hosts=hosts)


def source_from_row(row: UpstreamSource) -> Source:
    return Source(
        name=row.name,
        format=row.format,
        url=row.url.rstrip("/"),
        priority=row.priority,
        origin="database",
        auth_type=row.auth_type,
        username=row.username,
        sealed_secret=row.secret_ciphertext,
        file_hosts=tuple(row.file_hosts.split()),
    )


async def _load(settings: Settings, db: Database, fmt: str) -> list[Source]:
    found: list[Source] = []
    first = await settings_source(settings, fmt)
    if first is not None:
        found.append(first)
    async with db.session() as session:
        rows = await session.scalars(
            select(UpstreamSource).where(
                UpstreamSource.format == fmt, UpstreamSource.enabled.is_(True)
            )
        )
        found.extend(source_from_row(r) for r in rows)
    found.sort(key=lambda s: (s.priority, s.origin == "database", s.name))
    return found


async def effective_sources(
    settings: Settings, db: Database, cache: Cache, fmt: str
) -> list[Source]:
    """The sources of ``fmt`` in the order they are asked."""
    cached = await cache.get(Category.UPSTREAM_SOURCES, fmt, _EFFECTIVE)
    if cached is not None:
        try:
            return [
                Source(**{**item, "file_hosts": tuple(item.get("file_hosts", ()))})
                for item in json.loads(cached)
            ]
        except (ValueError, TypeError):
            log.warning("ignoring a malformed cached upstream list for %s", fmt)
    sources = await _load(settings, db, fmt)
    payload = json.dumps([asdict(s) for s in sources]).encode()
    await cache.set(Category.UPSTREAM_SOURCES, fmt, _EFFECTIVE, payload)
    return sources


async def invalidate(cache: Cache) -> None:
    """Forget the cached lists (after any change to the sources)."""
    await cache.clear(Category.UPSTREAM_SOURCES)


def secret_box(app_state: Any) -> SecretBox | None:
    key: bytes | None = getattr(app_state, "secret_key", None)
    return SecretBox(key) if key else None


async def upstream_status(app: Any, *, urls: bool = True) -> list[dict[str, Any]]:
    """Every effective source of every format, for /health: no secrets
    (URLs masked), and no URLs at all unless ``urls`` (administrators)."""
    state = app.state
    result: list[dict[str, Any]] = []
    for fmt in UPSTREAM_FORMATS:
        for source in await effective_sources(state.settings, state.db, state.cache, fmt):
            item: dict[str, Any] = {
                "name": source.name,
                "format": fmt,
                "priority": source.priority,
                "origin": source.origin,
                "offline": bool(state.settings.offline),
            }
            if urls:
                item["url"] = mask(source.url)
                item["file_hosts"] = list(source.file_hosts)
            result.append(item)
    return result


def without_userinfo(url: str) -> str:
    """A URL safe to show: credentials a pip config may carry are removed."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
