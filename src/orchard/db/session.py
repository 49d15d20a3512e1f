"""Engines and sessions.

Both SQLite and PostgreSQL run through SQLAlchemy's asyncio layer (aiosqlite,
psycopg 3). On SQLite, write transactions start with ``BEGIN IMMEDIATE`` so
that concurrent writers queue on the database lock (``busy_timeout``) instead
of failing when a read transaction tries to upgrade; reads use a plain
``BEGIN`` and never block on writers (WAL).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from orchard.errors import ConfigurationError, Unavailable
from orchard.settings import Settings


def async_url(url: str) -> str:
    """The asyncio driver URL for a configured database URL."""
    u = make_url(url)
    if u.drivername in ("sqlite", "sqlite+pysqlite"):
        return str(u.set(drivername="sqlite+aiosqlite"))
    if u.drivername in ("postgresql", "postgres", "postgresql+psycopg2"):
        return str(u.set(drivername="postgresql+psycopg"))
    return url


def sync_url(url: str) -> str:
    """The blocking driver URL (Alembic, the CLI)."""
    u = make_url(url)
    if u.drivername == "sqlite+aiosqlite":
        return str(u.set(drivername="sqlite"))
    if u.drivername in ("postgresql", "postgres", "postgresql+psycopg2"):
        return str(u.set(drivername="postgresql+psycopg"))
    return url


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=60000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def make_engine(settings: Settings, *, immediate: bool = False) -> AsyncEngine:
    url = async_url(settings.effective_database_url)
    try:
        make_url(url)
    except Exception as exc:
        raise ConfigurationError(f"ORCHARD_DATABASE_URL is not a database URL: {exc}") from exc
    if url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, pool_size=20, max_overflow=40, pool_timeout=60)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        begin = "BEGIN IMMEDIATE" if immediate else "BEGIN"

        @event.listens_for(engine.sync_engine, "begin")
        def _begin(conn: Any) -> None:
            conn.exec_driver_sql(begin)

        return engine
    return create_async_engine(
        url,
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_max_overflow,
        pool_pre_ping=True,
        pool_timeout=30,
    )


class Database:
    """The engines and session factories of one process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = make_engine(settings)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        self.write_engine = make_engine(settings, immediate=True) if self.is_sqlite else self.engine
        self._read = async_sessionmaker(self.engine, expire_on_commit=False)
        self._write = async_sessionmaker(self.write_engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def session(self, *, write: bool = False) -> AsyncIterator[AsyncSession]:
        factory = self._write if write else self._read
        try:
            async with factory() as session:
                yield session
        except (OSError, ConnectionError) as exc:
            raise Unavailable(f"database unavailable: {exc}") from exc

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A write session inside a transaction, committed on success."""
        async with self.session(write=True) as session, session.begin():
            yield session

    async def check(self) -> None:
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except (SQLAlchemyError, OSError) as exc:
            raise Unavailable(f"database unavailable: {exc.__class__.__name__}") from exc

    async def close(self) -> None:
        await self.engine.dispose()
        if self.write_engine is not self.engine:
            await self.write_engine.dispose()
