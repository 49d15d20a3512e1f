"""Running Alembic from Orchard (``orchard db upgrade``, ``orchard serve``)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.exc import InterfaceError, OperationalError

from orchard.db.session import prepare_data_dir, sync_url
from orchard.errors import ConfigurationError
from orchard.settings import Settings

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(settings: Settings) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", sync_url(settings.effective_database_url))
    return cfg


def upgrade(settings: Settings, revision: str = "head") -> None:
    """Migrate; an unreachable or unusable database is a ConfigurationError
    that names ORCHARD_DATABASE_URL."""
    if settings.is_sqlite:
        prepare_data_dir(settings)
    try:
        command.upgrade(alembic_config(settings), revision)
    except (OperationalError, InterfaceError, OSError) as exc:
        first_line = str(getattr(exc, "orig", exc)).strip().splitlines()[0:1]
        raise ConfigurationError(
            f"ORCHARD_DATABASE_URL: cannot use the database "
            f"({exc.__class__.__name__}: {' '.join(first_line)})"
        ) from exc


def downgrade(settings: Settings, revision: str) -> None:
    command.downgrade(alembic_config(settings), revision)
