"""The data dir is Orchard's alone: 0700 (0710 for nginx with
ORCHARD_ACCEL_REDIRECT), the embedded database and secret.key 0600, whatever
the umask; looser existing ones are tightened with one warning line
(issue 15, point 14)."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchard.auth.keys import secret_key
from orchard.db.migrate import upgrade
from orchard.db.session import prepare_data_dir
from orchard.settings import Settings


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def loose_umask() -> Iterator[None]:
    """The usual default umask, under which files are created 0644."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


@pytest.fixture
def warnings_seen() -> Iterator[list[str]]:
    seen: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.levelno >= logging.WARNING:
                seen.append(record.getMessage())

    handler = Collect()
    logger = logging.getLogger("orchard.db")
    logger.addHandler(handler)
    try:
        yield seen
    finally:
        logger.removeHandler(handler)


def test_created_private(tmp_path: Path, warnings_seen: list[str]) -> None:
    settings = Settings(data_dir=tmp_path / "new" / "data")
    upgrade(settings)  # orchard db upgrade / serve: creates the database
    secret_key(settings)  # the app's start: generates the key
    assert mode(settings.data_dir) == 0o700
    assert mode(settings.data_dir / "orchard.db") == 0o600
    assert mode(settings.data_dir / "secret.key") == 0o600
    for extra in ("orchard.db-wal", "orchard.db-shm"):
        if (settings.data_dir / extra).exists():
            assert mode(settings.data_dir / extra) == 0o600
    assert warnings_seen == []


def test_existing_loose_ones_tightened_with_one_warning(
    tmp_path: Path, warnings_seen: list[str]
) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    os.chmod(data, 0o755)
    for name in ("orchard.db", "secret.key"):
        (data / name).write_bytes(b"")
        os.chmod(data / name, 0o644)
    settings = Settings(data_dir=data)
    prepare_data_dir(settings)
    assert (mode(data), mode(data / "orchard.db"), mode(data / "secret.key")) == (
        0o700,
        0o600,
        0o600,
    )
    assert len(warnings_seen) == 1
    assert all(str(data / name) in warnings_seen[0] for name in ("orchard.db", "secret.key"))
    prepare_data_dir(settings)  # nothing left to do: no second warning
    secret_key(settings)
    assert len(warnings_seen) == 1


def test_nginx_may_traverse_with_accel_redirect(
    tmp_path: Path, warnings_seen: list[str]
) -> None:
    settings = Settings(data_dir=tmp_path / "data", accel_redirect="/_orchard/blobs/")
    prepare_data_dir(settings)
    assert mode(settings.data_dir) == 0o710
    os.chmod(settings.data_dir, 0o755)
    prepare_data_dir(settings)
    assert mode(settings.data_dir) == 0o710
    assert len(warnings_seen) == 1


def test_database_outside_the_data_dir(tmp_path: Path) -> None:
    elsewhere = tmp_path / "db"
    elsewhere.mkdir()
    settings = Settings(
        data_dir=tmp_path / "data", database_url=f"sqlite:///{elsewhere / 'o.db'}"
    )
    upgrade(settings)
    assert mode(elsewhere / "o.db") == 0o600
