"""``orchard token``: API tokens, straight against the database."""

from __future__ import annotations

from datetime import timedelta

import typer
from rich.console import Console
from rich.table import Table

from orchard.auth import tokens, users
from orchard.cli.admin import CLI
from orchard.cli.database import run_with_db
from orchard.db.base import utcnow
from orchard.db.models import User
from orchard.db.session import Database
from orchard.settings import Settings

app = typer.Typer(no_args_is_help=True, help="API tokens (on the server host).")


@app.command("create")
def create(
    user: str = typer.Option(..., "--user", help="owner"),
    name: str = typer.Option(..., "--name", help="label"),
    scope: str = typer.Option("read", "--scope", help="read or write"),
    expires_days: int | None = typer.Option(
        None, "--expires-days", min=1, max=36500, help="default: never"
    ),
    project: list[str] | None = typer.Option(None, "--project", help="restrict (repeatable)"),
) -> None:
    """Create a token; the token is the last word of the output."""

    async def work(db: Database, settings: Settings) -> str:
        async with db.transaction() as session:
            owner = await users.get_user(session, user)
            expires = utcnow() + timedelta(days=expires_days) if expires_days else None
            _, secret = await tokens.create_token(
                session, CLI, owner, name, scope, expires_at=expires, projects=project or None
            )
            return secret

    secret = run_with_db(work)
    typer.echo(f"created {scope} token {name!r} for {user}: {secret}")


@app.command("list")
def list_(user: str | None = typer.Option(None, "--user", help="only this user's")) -> None:
    """List tokens (never their secrets)."""

    async def work(db: Database, settings: Settings) -> list[tuple[object, ...]]:
        async with db.session() as session:
            owner = await users.get_user(session, user) if user else None
            rows = await tokens.list_tokens(session, owner)
            names = {u.id: u.username for u in [owner] if u} if owner else {}
            out: list[tuple[object, ...]] = []
            for t in rows:
                if t.user_id not in names:
                    u = await session.get(User, t.user_id)
                    names[t.user_id] = u.username if u else "?"
                out.append(
                    (
                        t.id,
                        names[t.user_id],
                        t.name,
                        t.scope,
                        t.prefix + "…",
                        t.expires_at,
                        t.last_used_at,
                        "revoked" if t.revoked_at else "active",
                    )
                )
            return out

    table = Table("id", "user", "name", "scope", "prefix", "expires", "last used", "state")
    for row in run_with_db(work):
        table.add_row(*[str(c) if c is not None else "-" for c in row])
    Console().print(table)


@app.command("revoke")
def revoke(token_id: int) -> None:
    """Revoke a token by id; it stops working at once."""

    async def work(db: Database, settings: Settings) -> None:
        async with db.transaction() as session:
            await tokens.revoke(session, CLI, await tokens.get_token(session, token_id))

    run_with_db(work)
    typer.echo(f"revoked token {token_id}")
