"""The ``orchard`` command."""

from __future__ import annotations

import os
import sys

import typer

from orchard.cli import admin, client, ops, tokens

app = typer.Typer(
    no_args_is_help=True, add_completion=False, help="Orchard: a self-hosted artifact repository."
)
db_app = typer.Typer(no_args_is_help=True, help="Database schema.")
app.add_typer(db_app, name="db")
app.add_typer(admin.app, name="admin")
app.add_typer(tokens.app, name="token")
app.command("gc")(ops.gc)
app.command("fsck")(ops.fsck)
app.command("upload")(client.upload)
app.command("download")(client.download)


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="address to listen on"),
    port: int = typer.Option(8080, help="port to listen on"),
    workers: int = typer.Option(1, help="worker processes"),
    dev: bool = typer.Option(False, "--dev", help="development mode: seed example data"),
) -> None:
    """Migrate the database, then serve HTTP (granian, ASGI)."""
    if dev:
        os.environ["ORCHARD_DEV"] = "true"
    settings = ops.load_settings()
    ops.migrate(settings)
    typer.echo(f"Orchard listening on http://{host}:{port} (data: {settings.data_dir})", err=True)
    # Become the lean server process (orchard.server): same PID, but without
    # this command's typer, rich, Alembic and migration state in memory.
    sys.stdout.flush()
    sys.stderr.flush()
    args = ["--host", host, "--port", str(port), "--workers", str(workers)]
    args += ["--io-threads", str(settings.server_io_threads)]
    # Connection limits and timeouts: a slow client costs one connection.
    args += ["--backlog", str(settings.server_backlog)]
    args += ["--backpressure", str(settings.server_backpressure)]
    args += ["--header-timeout", str(settings.server_header_timeout)]
    args += ["--keepalive-timeout", str(settings.server_keepalive_timeout)]
    os.execv(sys.executable, [sys.executable, "-m", "orchard.server", *args])


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head")) -> None:
    """Apply database migrations."""
    ops.migrate(ops.load_settings(), revision)
    typer.echo(f"database upgraded to {revision}")


if __name__ == "__main__":
    app()
