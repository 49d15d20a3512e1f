"""One contract suite for every cache backend (memory and Redis), plus each one's extras.

Needs a Redis server at 127.0.0.1:6379 (database 15 is flushed around each
test) and ``redis-server`` on PATH for the reconnect test.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path
from subprocess import DEVNULL

import pytest
from redis.asyncio import Redis

from orchard.cache.base import Cache, Category, cache_key
from orchard.cache.memory import MemoryCache
from orchard.cache.redis import RedisCache, mask_url
from orchard.settings import Settings

REDIS_URL = "redis://127.0.0.1:6379/15"
PROTO = "pypi"


@pytest.fixture
async def raw() -> AsyncIterator[Redis]:
    client = Redis.from_url(REDIS_URL)
    await client.flushdb()
    yield client
    await client.flushdb()
    await client.aclose()


@pytest.fixture(params=["memory", "redis"])
async def cache(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Cache]:
    settings = Settings(data_dir=tmp_path, redis_url=REDIS_URL, cache_ttl_index=1)
    if request.param == "memory":
        memory = MemoryCache(settings)
        yield memory
        await memory.close()
        return
    raw = Redis.from_url(REDIS_URL)
    await raw.flushdb()
    redis_cache = RedisCache(settings)
    yield redis_cache
    await redis_cache.close()
    await raw.flushdb()
    await raw.aclose()


async def stored_keys(cache: Cache) -> set[str]:
    if isinstance(cache, MemoryCache):
        return set(cache.keys())
    raw = Redis.from_url(REDIS_URL)
    try:
        return {k.decode() async for k in raw.scan_iter(match="orchard:*")}
    finally:
        await raw.aclose()


# The contract ------------------------------------------------------------------


async def test_miss_set_hit_counts_stats(cache: Cache) -> None:
    assert await cache.get(Category.ARTIFACT_METADATA, PROTO, "a") is None
    await cache.set(Category.ARTIFACT_METADATA, PROTO, "a", b"meta")
    assert await cache.get(Category.ARTIFACT_METADATA, PROTO, "a") == b"meta"
    assert (cache.stats.hits, cache.stats.misses, cache.stats.errors) == (1, 1, 0)


async def test_keys_follow_the_naming_scheme(cache: Cache) -> None:
    await cache.set(Category.PACKAGE_INDEX, "npm", "left-pad", b"x")
    assert await stored_keys(cache) == {"orchard:package-index:npm:left-pad"}
    assert cache_key(Category.PACKAGE_INDEX, "npm", "left-pad") == (
        "orchard:package-index:npm:left-pad"
    )


async def test_ttl_entries_expire_and_explicit_ttl_overrides(cache: Cache) -> None:
    await cache.set(Category.PACKAGE_INDEX, PROTO, "default", b"1")  # 1 s from settings
    await cache.set(Category.PACKAGE_INDEX, PROTO, "longer", b"2", ttl=60)
    await cache.set(Category.ARTIFACT_METADATA, PROTO, "shorter", b"3", ttl=1)
    await cache.set(Category.ARTIFACT_METADATA, PROTO, "forever", b"4")
    assert await cache.get(Category.PACKAGE_INDEX, PROTO, "default") == b"1"
    await asyncio.sleep(1.2)
    assert await cache.get(Category.PACKAGE_INDEX, PROTO, "default") is None
    assert await cache.get(Category.PACKAGE_INDEX, PROTO, "longer") == b"2"
    assert await cache.get(Category.ARTIFACT_METADATA, PROTO, "shorter") is None
    assert await cache.get(Category.ARTIFACT_METADATA, PROTO, "forever") == b"4"


async def test_delete(cache: Cache) -> None:
    await cache.set(Category.VERSION_LISTINGS, PROTO, "a", b"1")
    await cache.set(Category.VERSION_LISTINGS, PROTO, "b", b"2")
    await cache.delete(Category.VERSION_LISTINGS, PROTO, "a")
    await cache.delete(Category.VERSION_LISTINGS, PROTO, "never-set")
    assert await cache.get(Category.VERSION_LISTINGS, PROTO, "a") is None
    assert await cache.get(Category.VERSION_LISTINGS, PROTO, "b") == b"2"


async def test_clear_by_category_and_by_protocol(cache: Cache) -> None:
    for proto in ("pypi", "npm"):
        for ident in ("a", "b*", "c:d"):
            await cache.set(Category.PACKAGE_INDEX, proto, ident, b"i")
            await cache.set(Category.ARTIFACT_METADATA, proto, ident, b"m")
    await cache.clear(Category.PACKAGE_INDEX, "npm")
    pypi_index = {cache_key(Category.PACKAGE_INDEX, "pypi", i) for i in ("a", "b*", "c:d")}
    metadata = {
        cache_key(Category.ARTIFACT_METADATA, p, i)
        for p in ("pypi", "npm")
        for i in ("a", "b*", "c:d")
    }
    assert await stored_keys(cache) == pypi_index | metadata
    await cache.clear(Category.ARTIFACT_METADATA)
    assert await stored_keys(cache) == pypi_index


async def test_binary_values_round_trip(cache: Cache) -> None:
    value = bytes(range(256)) * 64 + b"\x00\r\n\xff"
    await cache.set(Category.DEPENDENCY_RESOLUTIONS, PROTO, "bin", value)
    await cache.set(Category.DEPENDENCY_RESOLUTIONS, PROTO, "empty", b"")
    assert await cache.get(Category.DEPENDENCY_RESOLUTIONS, PROTO, "bin") == value
    assert await cache.get(Category.DEPENDENCY_RESOLUTIONS, PROTO, "empty") == b""


async def test_status_shape(cache: Cache) -> None:
    status = await cache.status()
    assert status["enabled"] is True
    assert status["connected"] is True
    assert status["backend"] == cache.backend
    assert isinstance(cache, Cache)


# Redis extras ---------------------------------------------------------------------


async def test_redis_key_ttls(raw: Redis, tmp_path: Path) -> None:
    cache = RedisCache(Settings(data_dir=tmp_path, redis_url=REDIS_URL, cache_ttl_versions=30))
    await cache.set(Category.ARTIFACT_DEPENDENCIES, PROTO, "deps", b"d")
    await cache.set(Category.VERSION_LISTINGS, PROTO, "versions", b"v")
    await cache.set(Category.UPSTREAM_SOURCES, PROTO, "up", b"u", ttl=7)
    assert await raw.get("orchard:artifact-dependencies:pypi:deps") == b"d"
    assert await raw.ttl("orchard:artifact-dependencies:pypi:deps") == -1
    assert 0 < await raw.ttl("orchard:version-listings:pypi:versions") <= 30
    assert 0 < await raw.ttl("orchard:upstream-sources:pypi:up") <= 7
    status = dict(enabled=True, connected=True, backend="redis", url=REDIS_URL)
    assert await cache.status() == status
    await cache.close()


def test_redis_url_password_is_masked() -> None:
    assert mask_url("redis://:s3cret@cache:6380/2") == "redis://:***@cache:6380/2"
    assert mask_url("rediss://user:s3cret@[::1]/0") == "rediss://user:***@[::1]/0"
    assert mask_url("redis://cache:6379/0") == "redis://cache:6379/0"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def test_redis_down_is_a_miss_and_warns_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"redis://:hunter2@127.0.0.1:{free_port()}/0"  # nothing listens there
    cache = RedisCache(Settings(data_dir=tmp_path, redis_url=url), retry_interval=0.05)
    caplog.set_level(logging.INFO, logger="orchard.cache")
    for _ in range(5):
        await cache.set(Category.PACKAGE_INDEX, PROTO, "a", b"x")
        assert await cache.get(Category.PACKAGE_INDEX, PROTO, "a") is None
        await cache.delete(Category.PACKAGE_INDEX, PROTO, "a")
        await cache.clear(Category.PACKAGE_INDEX)
        await asyncio.sleep(0.06)  # past the window: the next call really retries
    masked = url.replace("hunter2", "***")
    status = dict(enabled=True, connected=False, backend="redis", url=masked)
    assert await cache.status() == status
    assert cache.stats.misses == 5 and cache.stats.errors >= 5
    warnings = [r for r in caplog.records if r.name == "orchard.cache"]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING
    assert "hunter2" not in caplog.text
    await cache.close()


class RedisServer:
    """A throwaway redis-server on a fixed port, to kill and bring back."""

    def __init__(self, port: int, workdir: Path) -> None:
        self.port, self.workdir = port, workdir
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        args = f"--port {self.port} --bind 127.0.0.1 --appendonly no --dir {self.workdir}"
        self.process = await asyncio.create_subprocess_exec(
            "redis-server", *args.split(), "--save", "", stdout=DEVNULL, stderr=DEVNULL
        )
        client = Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=0.2)
        try:
            for _ in range(100):
                try:
                    await client.ping()
                    return
                except OSError:  # redis' ConnectionError is an OSError too
                    await asyncio.sleep(0.05)
            raise RuntimeError("redis-server did not start")
        finally:
            await client.aclose()

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
        self.process = None


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RedisServer]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    srv = RedisServer(free_port(), tmp_path)
    await srv.start()
    yield srv
    await srv.stop()


async def test_redis_reconnects_after_restart(
    server: RedisServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="orchard.cache")
    cache = RedisCache(Settings(data_dir=tmp_path, redis_url=f"redis://127.0.0.1:{server.port}/0"))
    await cache.set(Category.ARTIFACT_METADATA, PROTO, "a", b"1")
    assert await cache.get(Category.ARTIFACT_METADATA, PROTO, "a") == b"1"

    await server.stop()
    for _ in range(3):
        started = time.monotonic()
        assert await cache.get(Category.ARTIFACT_METADATA, PROTO, "a") is None
        await cache.set(Category.ARTIFACT_METADATA, PROTO, "b", b"2")
        assert time.monotonic() - started < 1.5
    assert (await cache.status())["connected"] is False

    await server.start()  # the data is gone with the old process
    await cache.set(Category.ARTIFACT_METADATA, PROTO, "c", b"3")  # still paused: no-op
    async with Redis(port=server.port) as raw:
        assert await raw.dbsize() == 0
    await asyncio.sleep(2.1)
    await cache.set(Category.ARTIFACT_METADATA, PROTO, "c", b"3")
    assert await cache.get(Category.ARTIFACT_METADATA, PROTO, "c") == b"3"
    assert (await cache.status())["connected"] is True
    messages = [r.getMessage() for r in caplog.records if r.name == "orchard.cache"]
    assert len(messages) == 2 and "reconnected" in messages[1]
    await cache.close()


async def test_redis_survives_a_restart_it_did_not_see(server: RedisServer, tmp_path: Path) -> None:
    cache = RedisCache(Settings(data_dir=tmp_path, redis_url=f"redis://127.0.0.1:{server.port}"))
    await cache.set(Category.ARTIFACT_METADATA, PROTO, "a", b"1")
    await server.stop()
    await server.start()  # the pooled connection is now stale
    await cache.set(Category.ARTIFACT_METADATA, PROTO, "a", b"2")
    assert await cache.get(Category.ARTIFACT_METADATA, PROTO, "a") == b"2"
    assert cache.stats.errors == 0
    await cache.close()


# Memory extras --------------------------------------------------------------------


async def test_memory_evicts_least_recently_used_by_bytes(tmp_path: Path) -> None:
    cache = MemoryCache(Settings(data_dir=tmp_path), max_bytes=100)
    for name in "abc":
        await cache.set(Category.ARTIFACT_METADATA, PROTO, name, name.encode() * 30)
    assert await cache.get(Category.ARTIFACT_METADATA, PROTO, "a") is not None  # a is fresh
    await cache.set(Category.ARTIFACT_METADATA, PROTO, "d", b"d" * 30)  # 120 > 100: drop b
    assert set(cache.keys()) == {cache_key(Category.ARTIFACT_METADATA, PROTO, n) for n in "cad"}
    await cache.set(Category.ARTIFACT_METADATA, PROTO, "huge", b"h" * 101)  # never stored
    assert await cache.get(Category.ARTIFACT_METADATA, PROTO, "huge") is None
    status = await cache.status()
    assert (status["entries"], status["bytes"]) == (3, 90)
    await cache.set(Category.ARTIFACT_METADATA, PROTO, "c", b"c")  # replacing frees bytes
    assert (await cache.status())["bytes"] == 61
