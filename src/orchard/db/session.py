"""Engines and sessions.

Both SQLite and PostgreSQL run through SQLAlchemy's asyncio layer (aiosqlite,
psycopg 3). On SQLite, write transactions start with ``BEGIN IMMEDIATE`` so
that concurrent writers queue on the database lock (``busy_timeout``) instead
of failing when a read transaction tries to upgrade; reads use a plain
``BEGIN`` and never block on writers (WAL). Within one process, writers
also queue on an asyncio lock first: SQLite's busy handler polls with sleeps
of up to 100 ms, so 64 writers contending on the file lock took twice as long
as the same writers waiting their turn in order; the file lock (and
``busy_timeout``) still orders writers of different processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import stat
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError, SQLAlchemyError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from orchard.db.prebuilt import Prebuilt
from orchard.errors import ConfigurationError, Conflict, Unavailable
from orchard.settings import Settings

if TYPE_CHECKING:
    import aiosqlite

log = logging.getLogger("orchard.db")

BUSY_TIMEOUT = 60.0  # seconds a SQLite writer waits for its turn (also PRAGMA busy_timeout)
# SQLite's page cache is per connection (2 MiB by default) and every pooled
# connection keeps its own: with 20 of them kept after a burst, most of the
# database sat in the process several times over. The operating system's
# page cache holds the file once for all of them; 1 MiB each is measured in
# bench/README.md (RSS after the PyPI bench).
SQLITE_CACHE_KIB = 1024
# Connections kept and opened beyond them under load. SQLite writes one
# transaction at a time; reads beyond a few connections only queue on the GIL.
SQLITE_POOL_SIZE = 8
SQLITE_MAX_OVERFLOW = 32

T = TypeVar("T")
# Runs one prebuilt statement inside ``Database.write_blocking``; its rows.
Run = Callable[[Prebuilt, Mapping[str, Any]], list[Any]]


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


# The data dir holds the embedded database, the secret key and the blobs:
# only Orchard's user may enter it. With ORCHARD_ACCEL_REDIRECT, nginx's
# workers (in Orchard's group) must traverse it to reach blobs/.
DATA_DIR_MODE = 0o700
ACCEL_DATA_DIR_MODE = 0o710
SECRET_FILE_MODE = 0o600  # the SQLite files and secret.key


def sqlite_file(settings: Settings) -> Path | None:
    """The embedded database's file, if the database is a SQLite file."""
    if not settings.is_sqlite:
        return None
    path = make_url(settings.effective_database_url).database
    if not path or path == ":memory:" or path.startswith("file:"):
        return None
    return Path(path)


def _tighten(path: Path, allowed: int, changed: list[str]) -> None:
    """Remove the permission bits of ``path`` beyond ``allowed``."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return
    if mode & ~allowed:
        try:
            path.chmod(mode & allowed)
            changed.append(f"{path} {mode:04o}->{mode & allowed:04o}")
        except OSError as exc:
            changed.append(f"{path} {mode:04o} (cannot change: {exc.strerror})")


def prepare_data_dir(settings: Settings) -> None:
    """Create the data dir (0700; 0710 with ORCHARD_ACCEL_REDIRECT) and the
    embedded database file (0600) if missing, and take away the permissions
    that existing ones (also the database's -wal/-shm files and secret.key)
    have beyond those, with one warning line. Idempotent and cheap: the
    server, ``orchard db upgrade`` and the key loader each call it."""
    dir_mode = ACCEL_DATA_DIR_MODE if settings.accel_redirect else DATA_DIR_MODE
    data_dir = settings.data_dir
    data_dir.mkdir(parents=True, exist_ok=True, mode=dir_mode)
    changed: list[str] = []
    _tighten(data_dir, dir_mode, changed)
    database = sqlite_file(settings)
    if database is not None and database.parent.is_dir():
        with contextlib.suppress(FileExistsError):  # SQLite takes an empty file as new
            os.close(os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, SECRET_FILE_MODE))
        for suffix in ("", "-wal", "-shm", "-journal"):
            _tighten(database.with_name(database.name + suffix), SECRET_FILE_MODE, changed)
    _tighten(data_dir / "secret.key", SECRET_FILE_MODE, changed)
    if changed:
        log.warning(
            "took away group and other permissions from the data dir: %s",
            "; ".join(changed),
            extra={"event": "permissions"},
        )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT * 1000)}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
    cursor.close()


def _existing_file_uri(path: str) -> str:
    """A URI that opens ``path`` only if it exists (``mode=rw``): a file
    that vanished between a check and the open is never created empty."""
    return f"{Path(path).resolve().as_uri()}?mode=rw"


def _file_identity(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


class _SqliteFileGuard:
    """Notices the database file being deleted or replaced under a running server.

    A pooled SQLite connection keeps its file open: deleted (or its directory
    removed or replaced), the database goes on answering from the unlinked
    inode and accepts writes that are lost when the process ends, while
    /health says "up". So each checkout compares the path with the file the
    connection opened; a stale connection is dropped and a new one opened. A
    new connection to a file that has vanished is refused instead of SQLite
    quietly creating an empty database, so requests and /health fail (503)
    until the file is back.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.seen = False

    def do_connect(self, dialect: Any, record: Any, cargs: Any, cparams: Any) -> None:
        if self.seen and _file_identity(self.path) is None:
            raise sqlite3.OperationalError(f"database file {self.path} has disappeared")

    def connect(self, dbapi_connection: Any, record: Any) -> None:
        record.info["sqlite_file"] = _file_identity(self.path)
        self.seen = True

    def checkout(self, dbapi_connection: Any, record: Any, proxy: Any) -> None:
        if _file_identity(self.path) != record.info.get("sqlite_file"):
            raise DisconnectionError(f"database file {self.path} was removed or replaced")


def make_engine(settings: Settings, *, immediate: bool = False) -> AsyncEngine:
    try:
        url = async_url(settings.effective_database_url)
    except Exception as exc:
        raise ConfigurationError(f"ORCHARD_DATABASE_URL is not a database URL: {exc}") from exc
    if url.startswith("sqlite"):
        prepare_data_dir(settings)
        engine = create_async_engine(
            url, pool_size=SQLITE_POOL_SIZE, max_overflow=SQLITE_MAX_OVERFLOW, pool_timeout=60
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        path = make_url(url).database
        if path and path != ":memory:" and not path.startswith("file:"):
            guard = _SqliteFileGuard(path)
            event.listen(engine.sync_engine, "do_connect", guard.do_connect)
            event.listen(engine.sync_engine, "connect", guard.connect)
            event.listen(engine.sync_engine.pool, "checkout", guard.checkout)
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


def _fetch(
    conn: sqlite3.Connection, statement: Prebuilt, dialect: Any, values: Mapping[str, Any]
) -> list[Any]:
    return conn.execute(*statement.bound(dialect, values)).fetchall()


class Database:
    """The engines and session factories of one process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        if not settings.is_sqlite:  # (make_engine prepares it for SQLite)
            prepare_data_dir(settings)  # staging, secret.key
        self.engine = make_engine(settings)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        self.write_engine = make_engine(settings, immediate=True) if self.is_sqlite else self.engine
        self._read = async_sessionmaker(self.engine, expire_on_commit=False)
        self._write = async_sessionmaker(self.write_engine, expire_on_commit=False)
        self._write_turn = asyncio.Lock() if self.is_sqlite else None
        path = make_url(self.engine.url).database if self.is_sqlite else None
        plain_file = path and path != ":memory:" and not path.startswith("file:")
        self._reader_path = path if plain_file else None
        self._reader: aiosqlite.Connection | None = None
        self._reader_file: tuple[int, int] | None = None
        self._reader_lock = asyncio.Lock()
        self._writer: sqlite3.Connection | None = None  # see write_blocking
        self._writer_file: tuple[int, int] | None = None
        self._closed = False

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    async def _take_turn(self, turn: asyncio.Lock) -> None:
        try:
            async with asyncio.timeout(BUSY_TIMEOUT):
                await turn.acquire()
        except TimeoutError as exc:
            raise Unavailable(f"database busy: no write turn within {BUSY_TIMEOUT:.0f} s") from exc

    @asynccontextmanager
    async def _turn(self, write: bool) -> AsyncIterator[None]:
        """On SQLite, a write session waits for the previous one to finish."""
        if not write or self._write_turn is None:
            yield
            return
        await self._take_turn(self._write_turn)
        try:
            yield
        finally:
            self._write_turn.release()

    @asynccontextmanager
    async def session(self, *, write: bool = False) -> AsyncIterator[AsyncSession]:
        factory = self._write if write else self._read
        async with self._turn(write), factory() as session:
            # Driver failures surface as SQLAlchemy errors, which the API maps
            # to 503; anything else raised in the body keeps its own type.
            yield session

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A write session inside a transaction, committed on success."""
        async with self.session(write=True) as session, session.begin():
            yield session

    async def read_rows(self, statement: Prebuilt, values: Mapping[str, Any]) -> Sequence[Any]:
        """The rows of one prebuilt read (a hot lookup). On a SQLite file it
        runs in one hop on a connection kept for these reads, in autocommit
        (the statement is its own snapshot); a session would add six hops
        (BEGIN, cursor, fetch, close, rollback, reset). Elsewhere, a session."""
        reader = await self._sqlite_reader()
        if reader is None:
            async with self.session() as session:
                return await statement.rows(await session.connection(), values)
        sql, params = statement.bound(self.engine.dialect, values)
        try:
            return list(await reader.execute_fetchall(sql, params))
        except sqlite3.Error as exc:
            await self._close_reader()
            raise Unavailable(f"database unavailable: {exc.__class__.__name__}") from exc

    async def _sqlite_reader(self) -> aiosqlite.Connection | None:
        """The kept read connection, reopened when the database file was
        replaced; None (the session path, with its errors) when the file
        is gone or not a plain file."""
        if self._reader_path is None:
            return None
        identity = _file_identity(self._reader_path)
        if identity is None:
            return None
        if self._reader is not None and identity == self._reader_file:
            return self._reader
        async with self._reader_lock:
            if self._reader is None or identity != self._reader_file:
                import aiosqlite

                await self._close_reader()
                reader = await aiosqlite.connect(
                    _existing_file_uri(self._reader_path), isolation_level=None, uri=True
                )
                await reader.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT * 1000)}")
                self._reader, self._reader_file = reader, identity
            return self._reader

    @property
    def blocking_writes(self) -> bool:
        """Whether ``write_blocking`` can be used (the database is a SQLite file)."""
        return self._reader_path is not None

    async def write_blocking(self, work: Callable[[Run], T]) -> T:
        """Run ``work`` as one write transaction in a single thread hop.

        On a SQLite file only (``blocking_writes``): ``work`` runs in a worker
        thread, on a connection kept for these writes, between ``BEGIN
        IMMEDIATE`` and ``COMMIT`` (``ROLLBACK`` when it raises), and runs
        its statements with the ``Run`` it is given. A session takes several
        hops per statement and more to begin and end; the cold proxy fetch
        stores each file this way (``core/artifacts.add_cached_file``). It
        takes its write turn like a write session, and keeps it until the
        thread is done, even when the caller is cancelled meanwhile (the
        transaction then still ends, committed or rolled back, before the
        next one may start). sqlite3's errors become ``Conflict`` (a
        constraint) or ``Unavailable``."""
        assert self._reader_path is not None, "write_blocking needs a SQLite file"
        assert self._write_turn is not None
        dialect = self.engine.dialect

        def transaction() -> T:  # in a worker thread, holding the write turn
            try:
                conn = self._kept_writer()
                conn.execute("BEGIN IMMEDIATE")
                try:
                    result = work(lambda stmt, values: _fetch(conn, stmt, dialect, values))
                    conn.execute("COMMIT")
                    return result
                finally:
                    if conn.in_transaction:  # the work or the COMMIT failed
                        try:
                            conn.execute("ROLLBACK")
                        except sqlite3.Error:
                            self._close_writer()  # never reuse one stuck in a transaction
            except sqlite3.IntegrityError:
                raise
            except sqlite3.Error:
                self._close_writer()
                raise

        turn = self._write_turn
        await self._take_turn(turn)
        try:
            done = asyncio.get_running_loop().run_in_executor(None, transaction)
        except BaseException:
            turn.release()
            raise

        def ended(fut: asyncio.Future[T]) -> None:
            turn.release()
            if not fut.cancelled():
                fut.exception()  # retrieved, also when the caller was cancelled

        done.add_done_callback(ended)
        try:
            return await asyncio.shield(done)
        except sqlite3.IntegrityError as exc:
            raise Conflict("the resource changed concurrently; retry") from exc
        except sqlite3.Error as exc:
            raise Unavailable(f"database unavailable: {exc.__class__.__name__}") from exc

    def _kept_writer(self) -> sqlite3.Connection:
        """The connection of ``write_blocking`` (in its thread, in its turn),
        reopened when the database file was replaced; never a new empty
        database in place of one that has gone."""
        path = self._reader_path
        assert path is not None
        if self._closed:
            raise sqlite3.OperationalError("the database has been closed")
        identity = _file_identity(path)
        if identity is None:
            raise sqlite3.OperationalError(f"database file {path} has disappeared")
        if self._writer is None or identity != self._writer_file:
            self._close_writer()
            conn = sqlite3.connect(
                _existing_file_uri(path), isolation_level=None, check_same_thread=False, uri=True
            )
            _sqlite_pragmas(conn, None)
            self._writer, self._writer_file = conn, identity
        return self._writer

    def _close_writer(self) -> None:
        writer, self._writer, self._writer_file = self._writer, None, None
        if writer is not None:
            with contextlib.suppress(sqlite3.Error):
                writer.close()

    async def _close_reader(self) -> None:
        reader, self._reader, self._reader_file = self._reader, None, None
        if reader is not None:
            await reader.close()

    async def check(self) -> None:
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except (SQLAlchemyError, OSError) as exc:
            raise Unavailable(f"database unavailable: {exc.__class__.__name__}") from exc

    async def close(self) -> None:
        """Close every connection; a late ``write_blocking`` is refused
        rather than reopening one."""
        self._closed = True
        try:
            await self._close_reader()
            async with self._turn(True):
                self._close_writer()
        finally:
            try:
                await self.engine.dispose()
            finally:
                if self.write_engine is not self.engine:
                    await self.write_engine.dispose()
