"""``orchard admin``: user accounts, straight against the database."""

from __future__ import annotations

import typer

from orchard.auth import passwords, users
from orchard.cli.database import run_with_db
from orchard.core.audit import Actor
from orchard.db.session import Database
from orchard.settings import Settings

app = typer.Typer(no_args_is_help=True, help="User accounts (on the server host).")
CLI = Actor(name="cli", credential="cli")


def _password_or_prompt(password: str | None) -> tuple[str, bool]:
    if password:
        return password, False
    return passwords.generate_password(), True


@app.command("create-user")
def create_user(
    name: str,
    password: str | None = typer.Option(None, help="default: a generated one, printed once"),
    admin: bool = typer.Option(False, "--admin", help="system administrator"),
) -> None:
    """Create a user."""
    secret, generated = _password_or_prompt(password)

    async def work(db: Database, settings: Settings) -> str:
        async with db.transaction() as session:
            user = await users.create_user(
                session, CLI, name, secret, is_admin=admin, must_change_password=generated
            )
            return user.username

    created = run_with_db(work)
    typer.echo(f"created user {created}" + (" (administrator)" if admin else ""))
    if generated:
        typer.echo(f"password: {secret}")


@app.command("reset-password")
def reset_password(
    name: str,
    password: str | None = typer.Option(None, help="default: a generated one, printed once"),
) -> None:
    """Set a new password; the user must change it at the next web sign-in."""
    secret, generated = _password_or_prompt(password)

    async def work(db: Database, settings: Settings) -> None:
        async with db.transaction() as session:
            user = await users.get_user(session, name)
            await users.set_password(session, CLI, user, secret, must_change=True)

    run_with_db(work)
    typer.echo(f"password of {name} reset")
    if generated:
        typer.echo(f"password: {secret}")
