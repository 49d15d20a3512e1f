"""Operator commands that work straight against the configured backends."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import TypeVar

import typer
from rich.console import Console

from orchard.errors import OrchardError
from orchard.settings import Settings

T = TypeVar("T")
console = Console(stderr=True)


def load_settings() -> Settings:
    try:
        return Settings()
    except Exception as exc:
        console.print(f"[red]invalid settings:[/red] {exc}")
        raise typer.Exit(2) from exc


def migrate(settings: Settings, revision: str = "head") -> None:
    """Apply migrations; an unusable database URL exits 2 naming the setting."""
    from sqlalchemy.exc import ArgumentError, DBAPIError

    from orchard.db.migrate import upgrade

    try:
        upgrade(settings, revision)
    except OrchardError as exc:  # ConfigurationError naming the setting
        raise typer.Exit(_fail(exc.message)) from exc
    except (ArgumentError, DBAPIError) as exc:
        reason = getattr(exc, "orig", None) or exc
        message = f"ORCHARD_DATABASE_URL: cannot migrate the database ({reason})"
        raise typer.Exit(_fail(message)) from exc
    except OSError as exc:  # e.g. the SQLite file's directory cannot be created
        message = f"ORCHARD_DATABASE_URL: cannot migrate the database ({exc})"
        raise typer.Exit(_fail(message)) from exc


def run_with_backends(work: Callable[..., Awaitable[T]]) -> T:
    """Open database and storage from the settings, run ``work(db, storage)``.

    A backend that cannot be used stops the command with exit code 2 and a
    message naming the setting, never a traceback."""
    from sqlalchemy.exc import DBAPIError

    from orchard.db.session import Database
    from orchard.storage import create_store

    settings = load_settings()

    async def main() -> T:
        try:
            db = Database(settings)
        except OrchardError as exc:
            raise typer.Exit(_fail(exc.message)) from exc
        try:
            try:
                await db.check()
            except OrchardError as exc:
                cause = getattr(exc.__cause__, "orig", None) or exc.__cause__ or exc
                raise typer.Exit(
                    _fail(f"ORCHARD_DATABASE_URL: cannot connect to the database ({cause})")
                ) from exc
            try:
                storage = create_store(settings)
                await storage.check()
            except OrchardError as exc:
                raise typer.Exit(_fail(exc.message)) from exc
            try:
                return await work(db, storage, settings)
            except DBAPIError as exc:
                raise typer.Exit(
                    _fail(
                        f"database error: {exc.orig} (is the schema current? `orchard db upgrade`)"
                    )
                ) from exc
            except OrchardError as exc:
                raise typer.Exit(_fail(exc.message)) from exc
            finally:
                await storage.close()
        finally:
            await db.close()

    return asyncio.run(main())


def _fail(message: str) -> int:
    console.print(f"[red]error:[/red] {message}")
    return 2


def _human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.1f} {unit}" if unit != "B" else f"{int(size)} B"
        size /= 1024
    return f"{n} B"


def gc(
    dry_run: bool = typer.Option(False, "--dry-run", help="report, delete nothing"),
    grace: int | None = typer.Option(None, "--grace", help="seconds (default ORCHARD_GC_GRACE)"),
) -> None:
    """Delete artifacts no file references any more (and orphaned blobs)."""
    from orchard.core.gc import collect

    async def work(db, storage, settings):  # type: ignore[no-untyped-def]
        return await collect(
            db, storage, grace=settings.gc_grace if grace is None else grace, dry_run=dry_run
        )

    report = run_with_backends(work)
    verb = "would free" if dry_run else "freed"
    for sha256, size in report.freed:
        print(f"{verb} {sha256} {size}")
    for sha256, size in report.orphans:
        print(f"{verb} orphan {sha256} {size}")
    print(
        f"{verb} {len(report.freed)} artifacts and {len(report.orphans)} orphaned blobs, "
        f"{_human(report.freed_bytes)} ({report.freed_bytes} bytes)"
    )


def fsck() -> None:
    """Re-hash every blob; report missing, corrupt and orphaned blobs."""
    from orchard.core.fsck import check

    async def work(db, storage, settings):  # type: ignore[no-untyped-def]
        return await check(db, storage)

    report = run_with_backends(work)
    for sha256 in report.missing:
        print(f"missing {sha256}")
    for sha256 in report.corrupt:
        print(f"corrupt {sha256}")
    for sha256 in report.orphaned:
        print(f"orphaned {sha256}")
    print(
        f"checked {report.checked} blobs: {len(report.missing)} missing, "
        f"{len(report.corrupt)} corrupt, {len(report.orphaned)} orphaned"
    )
    if not report.ok:
        sys.exit(1)
