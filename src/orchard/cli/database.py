"""Running a coroutine against the configured database (admin and token commands)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import typer
from rich.console import Console

from orchard.db.session import Database
from orchard.errors import OrchardError
from orchard.settings import Settings

T = TypeVar("T")
console = Console(stderr=True)


def run_with_db(work: Callable[[Database, Settings], Awaitable[T]]) -> T:
    """Migrate, open the database, run ``work``, close. Domain errors print
    their message and exit 1."""
    from orchard.db.migrate import upgrade

    settings = Settings()
    upgrade(settings)

    async def main() -> T:
        db = Database(settings)
        try:
            await db.check()
            return await work(db, settings)
        finally:
            await db.close()

    try:
        return asyncio.run(main())
    except OrchardError as exc:
        console.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(1) from exc
