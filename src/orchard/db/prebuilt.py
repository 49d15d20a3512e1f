"""Statements built and compiled once, for the paths every cold proxy fetch
waits on (``core/artifacts.add_cached_file``, ``upstream/files.py``).

Building a SQLAlchemy statement costs about as much as running it, so these
are built once per dialect with bind parameters. On SQLite they also skip
SQLAlchemy's driver adapter: aiosqlite runs a statement and fetches its rows
in one hop to its thread, where the adapter takes four (cursor, execute,
fetch, close), each a thread switch there and back. The statement is
compiled by SQLAlchemy, and values go through the column types' own bind
processors (datetimes, JSON, booleans) and the columns' scalar defaults, so
the rows are the ones a Core insert would write. Elsewhere (PostgreSQL) the
statement runs through the connection as usual.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

from sqlalchemy import Table
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement, Executable
from sqlalchemy.sql.schema import ScalarElementColumnDefault

Slot = tuple[str, Any, Callable[[Any], Any] | None]


class Prebuilt:
    """A statement and, per dialect, its compiled form."""

    def __init__(self, statement: Executable, table: Table | None = None) -> None:
        self.statement = statement
        self.table = table  # whose scalar column defaults fill unnamed values
        self._compiled: dict[str, tuple[str, list[Slot]]] = {}

    def _direct(self, dialect: Dialect) -> tuple[str, list[Slot]]:
        found = self._compiled.get(dialect.name)
        if found is None:
            element = cast(ClauseElement, self.statement)
            compiled = cast(SQLCompiler, element.compile(dialect=dialect))
            slots: list[Slot] = []
            for name in compiled.positiontup or ():
                bind = compiled.binds[name]
                default = bind.value
                if default is None and self.table is not None and name in self.table.c:
                    column_default = self.table.c[name].default
                    if isinstance(column_default, ScalarElementColumnDefault):
                        default = column_default.arg
                process = bind.type.dialect_impl(dialect).bind_processor(dialect)
                slots.append((name, default, process))
            found = self._compiled[dialect.name] = (compiled.string, slots)
        return found

    def prepare(self, dialect: Dialect) -> None:
        """Compile now (at start-up), not in the first request that runs it."""
        if dialect.driver == "aiosqlite":
            self._direct(dialect)

    def bound(self, dialect: Dialect, values: Mapping[str, Any]) -> tuple[str, list[Any]]:
        """The SQL text and positional parameters for ``values``."""
        sql, slots = self._direct(dialect)
        params = []
        for name, default, process in slots:
            value = values.get(name, default)
            params.append(process(value) if process is not None else value)
        return sql, params

    async def rows(self, conn: AsyncConnection, values: Mapping[str, Any]) -> Sequence[Any]:
        """Run with ``values``; the rows it returns (tuples)."""
        if conn.dialect.driver != "aiosqlite":
            result = await conn.execute(self.statement, dict(values))
            return list(result) if result.returns_rows else []
        sql, params = self.bound(conn.dialect, values)
        driver = (await conn.get_raw_connection()).driver_connection
        assert driver is not None
        return list(await driver.execute_fetchall(sql, params))
