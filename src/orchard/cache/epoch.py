"""The content epoch as this process sees it: when it moves, the near cache goes.

Every committed change of what a read answers raises one number in the
database (``content_epoch``, kept by triggers: ``db/triggers.py``), whoever
made it: a request on any replica, the CLI on the host (``gc``, ``admin``,
``token``), a statement typed into ``psql``. A failed or refused request
changes nothing and so drops nothing; neither does a request that writes
only bookkeeping (sign-ins, token use, audit rows, upload sessions).

How a server learns the value, per database:

- **SQLite** (embedded): ``current()`` reads the row on a connection of its
  own, straight through the ``sqlite3`` module, at most once every
  ``READ_INTERVAL`` (1 ms); ``refresh()`` makes the next call read it. The
  read is the one statement that bypasses SQLAlchemy: 4 µs idle, but 15 to
  28 µs inside a loaded server (the WAL's shared-memory locks are system
  calls), against 27 µs idle through SQLAlchemy Core and about a millisecond
  through the asyncio engine's thread, for a warm hit that costs about 50 µs
  in all. Read on every request, it cost a third of the hit rate (13,000
  against 16,000 requests/s, `wrk` on this 2-core machine); once a
  millisecond, nothing measurable. What that leaves: a request in another
  process (the CLI on the host, ``serve --workers N``) that starts within
  1 ms of a commit may still be answered from the old copy; the CLI takes
  longer than that to exit after its commit, so the request after the
  command returned sees the change.
- **PostgreSQL** (production): a round trip per request would cost more than
  the hit itself, so ``current()`` returns the last value heard. The trigger
  NOTIFYs ``orchard_content`` at commit; one connection per process LISTENs
  and hears every replica's and the CLI's commits within a millisecond or
  so. The same connection reads the row every ``POLL_INTERVAL`` seconds
  (a missed notification, a pooler that drops LISTEN), and ``refresh()``
  reads it at once: the near-cache middleware calls it before answering a
  write request that succeeded, so this process never answers from its old
  copy after its own write. While the listener is down the value is
  unknown (None) and nothing is served from memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy.engine import make_url

from orchard.db.triggers import EPOCH_CHANNEL, EPOCH_TABLE

log = logging.getLogger("orchard.cache")

READ = f"SELECT value FROM {EPOCH_TABLE} WHERE id = 1"
READ_INTERVAL = 0.001  # seconds: SQLite's row is read at most this often
POLL_INTERVAL = 1.0  # seconds between reads of the row on PostgreSQL (besides NOTIFY)
RETRY = 1.0  # seconds before reconnecting a lost listener
CONNECT_TIMEOUT = 5  # seconds


class ContentEpoch(Protocol):
    def current(self) -> int | None:
        """The epoch as known now (None: unknown, serve nothing from memory)."""

    async def refresh(self) -> None:
        """Learn the committed value now (after this process's own write)."""

    async def close(self) -> None: ...


class SqliteEpoch:
    """See the module docstring (SQLite)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None
        self._value: int | None = None
        self._due = 0.0  # when ``current`` reads the row again

    def _connect(self) -> sqlite3.Connection:
        uri = f"{Path(self.path).resolve().as_uri()}?mode=ro"
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout=100")
        return conn

    def current(self) -> int | None:
        now = time.monotonic()
        if now >= self._due:
            self._due = now + READ_INTERVAL
            self._value = self._read()
        return self._value

    def _read(self) -> int | None:
        try:
            if self._conn is None:
                self._conn = self._connect()
            row = self._conn.execute(READ).fetchone()
        except sqlite3.Error as exc:
            log.debug("reading the content epoch failed: %s", exc)
            self._drop()
            return None
        return int(row[0]) if row else None

    async def refresh(self) -> None:
        self._due = 0.0  # the next ``current`` reads the row

    def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
            self._conn = None

    async def close(self) -> None:
        self._drop()


class PostgresEpoch:
    """See the module docstring (PostgreSQL)."""

    def __init__(self, url: str, engine: Any) -> None:
        self.url = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        self.engine = engine  # the application's AsyncEngine, for ``refresh``
        self.value: int | None = None
        self.listening = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def current(self) -> int | None:
        return self.value

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._listen(), name="content-epoch-listener")

    async def refresh(self) -> None:
        from sqlalchemy import text

        try:
            async with self.engine.connect() as conn:
                value = (await conn.execute(text(READ))).scalar()
        except Exception as exc:  # the database is down: the listener's state stands
            log.debug("reading the content epoch failed: %s", exc)
            return
        if value is not None and self.value is not None:
            self.value = max(self.value, int(value))

    async def _listen(self) -> None:
        import psycopg

        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT
                ) as conn:
                    await conn.execute(f"LISTEN {EPOCH_CHANNEL}")
                    while True:
                        # Read after LISTEN: nothing committed in between is missed.
                        row = await (await conn.execute(READ)).fetchone()
                        self.value = int(row[0]) if row else None
                        self.listening.set()
                        async for note in conn.notifies(timeout=POLL_INTERVAL):
                            with contextlib.suppress(ValueError):
                                self.value = max(self.value or 0, int(note.payload))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("content epoch listener: %s; retrying", exc)
            self.value = None
            self.listening.clear()
            await asyncio.sleep(RETRY)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self.value = None


def open_epoch(database: Any) -> ContentEpoch | None:
    """The epoch watcher for ``database`` (orchard.db.session.Database);
    None for an in-memory SQLite database (one process, nothing to watch)."""
    if database.is_sqlite:
        path = make_url(database.engine.url).database
        if not path or path == ":memory:" or path.startswith("file:"):
            return None
        return SqliteEpoch(path)
    epoch = PostgresEpoch(database.settings.effective_database_url, database.engine)
    epoch.start()
    return epoch
