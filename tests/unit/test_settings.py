"""Settings: defaults from DESIGN.md, environment, orchard.toml, fail-fast."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchard.errors import ConfigurationError
from orchard.settings import Settings
from orchard.storage import create_store


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("ORCHARD_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


def test_defaults_are_the_embedded_stack(tmp_path: Path) -> None:
    s = Settings()
    assert s.data_dir == (tmp_path / "orchard-data").resolve()
    assert s.effective_database_url == f"sqlite:///{s.data_dir / 'orchard.db'}"
    assert s.effective_storage_url == (s.data_dir / "blobs").as_uri()
    assert s.redis_url is None
    assert s.offline is False
    # The names and defaults the original system taught (DESIGN §6).
    assert (s.http_max_connections, s.http_max_keepalive) == (100, 20)
    assert (s.http_connect_timeout, s.http_read_timeout, s.http_worker_threads) == (30, 60, 32)
    assert (s.cache_ttl_index, s.cache_ttl_versions, s.cache_ttl_upstream) == (300, 300, 3600)
    assert (s.database_pool_size, s.database_max_overflow) == (20, 30)


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ORCHARD_DATA_DIR", str(tmp_path / "d"))
    monkeypatch.setenv("ORCHARD_MAX_UPLOAD_SIZE", "1234")
    monkeypatch.setenv("ORCHARD_REDIS_URL", "redis://127.0.0.1:6379/3")
    s = Settings()
    assert s.data_dir == tmp_path / "d"
    assert s.max_upload_size == 1234
    assert s.redis_url == "redis://127.0.0.1:6379/3"


def test_toml_file_is_read_and_env_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "orchard.toml").write_text('max_upload_size = 99\ngc_grace = 5\n')
    monkeypatch.setenv("ORCHARD_GC_GRACE", "7")
    s = Settings()
    assert s.max_upload_size == 99
    assert s.gc_grace == 7


def test_bad_value_names_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCHARD_MAX_UPLOAD_SIZE", "lots")
    with pytest.raises(Exception, match="max_upload_size"):
        Settings()


def test_unknown_storage_scheme_fails_fast(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="ORCHARD_STORAGE_URL"):
        create_store(Settings(data_dir=tmp_path, storage_url="ftp://somewhere/x"))


def test_public_view_hides_the_admin_password() -> None:
    assert Settings(admin_password="s3cret").public()["admin_password"] == "***"
