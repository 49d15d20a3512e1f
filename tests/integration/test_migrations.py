"""Alembic migrations on SQLite and PostgreSQL: upgrade head leaves nothing
for autogenerate to do, downgrade removes everything, and the ref_count
triggers count File rows on both engines."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from orchard.db.base import Base
from orchard.db.migrate import downgrade, upgrade
from orchard.db.session import sync_url
from orchard.settings import Settings
from tests.conftest import PG_ADMIN_URL

# The case-insensitive unique indexes (0005) are on expressions: SQLite's
# reflection skips them, and autogenerate skips them on both sides.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Skipped unsupported reflection of expression-based index:sqlalchemy.exc.SAWarning",
    "ignore:autogenerate skipping metadata-specified expression-based index:UserWarning",
)


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    if request.param == "sqlite":
        yield Settings(data_dir=tmp_path)
        return
    name = f"orchard_mig_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    try:
        yield Settings(data_dir=tmp_path, database_url=f"{base}/{name}")
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _engine(settings: Settings) -> Engine:
    return create_engine(sync_url(settings.effective_database_url))


def test_upgrade_head_leaves_nothing_to_autogenerate(fresh_settings: Settings) -> None:
    upgrade(fresh_settings)
    engine = _engine(fresh_settings)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        assert diff == []
    finally:
        engine.dispose()


def test_downgrade_removes_schema_and_upgrade_restores_it(fresh_settings: Settings) -> None:
    upgrade(fresh_settings)
    downgrade(fresh_settings, "base")
    engine = _engine(fresh_settings)
    try:
        tables = set(inspect(engine).get_table_names()) - {"alembic_version"}
        assert tables == set()
    finally:
        engine.dispose()
    upgrade(fresh_settings)
    engine = _engine(fresh_settings)
    try:
        assert "files" in inspect(engine).get_table_names()
    finally:
        engine.dispose()


def test_triggers_alone_keep_ref_count(fresh_settings: Settings) -> None:
    upgrade(fresh_settings)
    engine = _engine(fresh_settings)
    now = "2026-01-01 00:00:00"

    def ref_count(conn: object, sha: str) -> int:
        return int(conn.execute(  # type: ignore[attr-defined]
            text("SELECT ref_count FROM artifacts WHERE id = :id"), {"id": sha}
        ).scalar_one())

    try:
        with engine.begin() as conn:
            if engine.dialect.name == "sqlite":
                conn.execute(text("PRAGMA foreign_keys=ON"))
            for sha in ("a" * 64, "b" * 64):
                conn.execute(text(
                    "INSERT INTO artifacts (id, size, md5, sha1, sha512, content_type, ref_count,"
                    " created_at, touched_at) VALUES (:id, 1, '', '', '', 'x', 0, :t, :t)"
                ), {"id": sha, "t": now})
            conn.execute(text(
                "INSERT INTO projects (id, name, description, is_public, upstream, builtin,"
                " created_at, updated_at) VALUES (1, 'p', '', true, true, false, :t, :t)"
            ), {"t": now})
            conn.execute(text(
                "INSERT INTO packages (id, project_id, name, display_name, format, description,"
                " created_at) VALUES (1, 1, 'k', 'k', 'generic', '', :t)"
            ), {"t": now})
            for vid in (1, 2):
                conn.execute(text(
                    "INSERT INTO versions (id, package_id, version, created_at, yanked,"
                    " yank_reason, deprecated, meta) VALUES (:v, 1, :s, :t, false, '', '', '{}')"
                ), {"v": vid, "s": f"{vid}.0", "t": now})
            for fid, vid in ((1, 1), (2, 1), (3, 2)):
                conn.execute(text(
                    "INSERT INTO files (id, version_id, filename, artifact_id, created_at)"
                    " VALUES (:f, :v, :n, :a, :t)"
                ), {"f": fid, "v": vid, "n": f"f{fid}", "a": "a" * 64, "t": now})
            assert ref_count(conn, "a" * 64) == 3
            conn.execute(text("UPDATE files SET artifact_id = :b WHERE id = 1"), {"b": "b" * 64})
            assert ref_count(conn, "a" * 64) == 2
            assert ref_count(conn, "b" * 64) == 1
            conn.execute(text("DELETE FROM versions WHERE id = 2"))  # cascades to file 3
            assert ref_count(conn, "a" * 64) == 1
            conn.execute(text("DELETE FROM projects WHERE id = 1"))  # cascades to everything
            assert ref_count(conn, "a" * 64) == 0
            assert ref_count(conn, "b" * 64) == 0
    finally:
        engine.dispose()


def test_case_insensitive_names_upgrade_refuses_existing_collisions(
    fresh_settings: Settings,
) -> None:
    """0005 stops with the colliding names rather than pick one to drop; once
    the operator renames one, it completes."""
    upgrade(fresh_settings, "0004")
    engine = _engine(fresh_settings)
    now = "2026-01-01 00:00:00"
    try:
        with engine.begin() as conn:
            for pid, name in ((1, "Twin"), (2, "twin")):
                conn.execute(text(
                    "INSERT INTO projects (id, name, description, is_public, upstream, builtin,"
                    " created_at, updated_at) VALUES (:i, :n, '', true, true, false, :t, :t)"
                ), {"i": pid, "n": name, "t": now})
        with pytest.raises(RuntimeError, match="'twin'"):
            upgrade(fresh_settings)
        with engine.begin() as conn:
            conn.execute(text("UPDATE projects SET name = 'twin2' WHERE id = 2"))
        upgrade(fresh_settings)
        with pytest.raises(IntegrityError), engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO projects (id, name, description, is_public, upstream, builtin,"
                " created_at, updated_at) VALUES (3, 'TWIN', '', true, true, false, :t, :t)"
            ), {"t": now})
    finally:
        engine.dispose()


def _fill_0005(conn: Any, now: str) -> None:
    """Two projects, three packages of distinct names, versions and files
    sharing one artifact."""
    conn.execute(text(
        "INSERT INTO artifacts (id, size, md5, sha1, sha512, content_type, ref_count,"
        " created_at, touched_at) VALUES (:id, 1, '', '', '', 'x', 0, :t, :t)"
    ), {"id": "a" * 64, "t": now})
    for pid in (1, 2):
        conn.execute(text(
            "INSERT INTO projects (id, name, description, is_public, upstream, builtin,"
            " created_at, updated_at) VALUES (:i, :n, '', true, true, false, :t, :t)"
        ), {"i": pid, "n": f"p{pid}", "t": now})
    for kid, pid, name, fmt in ((1, 1, "yaml", "pypi"), (2, 1, "left-pad", "npm"),
                                (3, 2, "yaml", "generic")):
        conn.execute(text(
            "INSERT INTO packages (id, project_id, name, display_name, format, description,"
            " created_at) VALUES (:k, :p, :n, :n, :f, '', :t)"
        ), {"k": kid, "p": pid, "n": name, "f": fmt, "t": now})
        conn.execute(text(
            "INSERT INTO versions (id, package_id, version, created_at, yanked,"
            " yank_reason, deprecated, meta) VALUES (:v, :v, '1.0', :t, false, '', '', '{}')"
        ), {"v": kid, "t": now})
        conn.execute(text(
            "INSERT INTO files (id, version_id, filename, artifact_id, created_at)"
            " VALUES (:f, :f, 'x.bin', :a, :t)"
        ), {"f": kid, "a": "a" * 64, "t": now})


def _catalog_rows(conn: Any) -> list[Any]:
    return list(conn.execute(text(
        "SELECT k.project_id, k.name, k.format, v.version, f.filename, a.ref_count"
        " FROM packages k JOIN versions v ON v.package_id = k.id"
        " JOIN files f ON f.version_id = v.id JOIN artifacts a ON a.id = f.artifact_id"
        " ORDER BY k.id"
    )).all())


def test_packages_by_format_keeps_rows_and_downgrade_refuses_shared_names(
    fresh_settings: Settings,
) -> None:
    """0006 keeps every package, version, file and ref_count (SQLite rebuilds
    ``packages``); afterwards one name may exist in several formats, and the
    downgrade refuses until only one of them is left."""
    upgrade(fresh_settings, "0005")
    engine = _engine(fresh_settings)
    now = "2026-01-01 00:00:00"
    try:
        with engine.begin() as conn:
            _fill_0005(conn, now)
            before = _catalog_rows(conn)
        assert [row[-1] for row in before] == [3, 3, 3]
        upgrade(fresh_settings)
        with engine.begin() as conn:
            assert _catalog_rows(conn) == before
            conn.execute(text(
                "INSERT INTO packages (id, project_id, name, display_name, format, description,"
                " created_at) VALUES (4, 1, 'yaml', 'yaml', 'npm', '', :t)"
            ), {"t": now})
        with pytest.raises(IntegrityError), engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO packages (id, project_id, name, display_name, format, description,"
                " created_at) VALUES (5, 1, 'yaml', 'yaml', 'npm', '', :t)"
            ), {"t": now})
        with pytest.raises(RuntimeError, match="p1/yaml"):
            downgrade(fresh_settings, "0005")
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM packages WHERE id = 4"))
        downgrade(fresh_settings, "0005")
        with engine.begin() as conn:
            assert _catalog_rows(conn) == before
        with pytest.raises(IntegrityError), engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO packages (id, project_id, name, display_name, format, description,"
                " created_at) VALUES (4, 1, 'yaml', 'yaml', 'npm', '', :t)"
            ), {"t": now})
    finally:
        engine.dispose()


def _triggers(conn: Any) -> list[str]:
    if conn.dialect.name == "sqlite":
        sql = "SELECT name FROM sqlite_master WHERE type = 'trigger' ORDER BY name"
    else:
        sql = "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal ORDER BY tgname"
    return [row[0] for row in conn.execute(text(sql))]


def _epoch(conn: Any) -> int:
    return int(conn.execute(text("SELECT value FROM content_epoch WHERE id = 1")).scalar_one())


def test_format_columns_keep_rows_and_triggers(fresh_settings: Settings) -> None:
    """0008 renames the three ``ecosystem`` columns to ``format`` in place:
    values kept both ways, every trigger still there (the content epoch of
    ``upstream_sources`` still moves)."""
    upgrade(fresh_settings, "0007")
    engine = _engine(fresh_settings)
    now = "2026-01-01 00:00:00"
    tables = ("upstream_sources", "cached_urls", "artifact_dependencies")
    try:
        with engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO artifacts (id, size, md5, sha1, sha512, content_type, ref_count,"
                " created_at, touched_at) VALUES (:id, 1, '', '', '', 'x', 0, :t, :t)"
            ), {"id": "a" * 64, "t": now})
            conn.execute(text(
                "INSERT INTO upstream_sources (id, name, ecosystem, url, priority, enabled,"
                " auth_type, username, secret_ciphertext, file_hosts, created_at, updated_at)"
                " VALUES (1, 'corp', 'npm', 'http://h/', 5, true, 'none', '', '', '', :t, :t)"
            ), {"t": now})
            conn.execute(text(
                "INSERT INTO cached_urls (url_hash, url, artifact_id, ecosystem, fetched_at)"
                " VALUES ('h', 'http://h/x', :a, 'go', :t)"
            ), {"a": "a" * 64, "t": now})
            conn.execute(text(
                "INSERT INTO artifact_dependencies (id, artifact_id, ecosystem, name, specifier,"
                " kind) VALUES (1, :a, 'pypi', 'yaml', '', 'runtime')"
            ), {"a": "a" * 64})
            triggers = _triggers(conn)
        assert any(name.startswith("upstream_sources_content") for name in triggers)
        upgrade(fresh_settings)
        with engine.begin() as conn:
            assert _triggers(conn) == triggers
            assert [conn.execute(text(f"SELECT format FROM {t}")).scalar_one() for t in tables] \
                == ["npm", "go", "pypi"]
            before = _epoch(conn)
        with engine.begin() as conn:
            conn.execute(text("UPDATE upstream_sources SET priority = 6 WHERE id = 1"))
        with engine.begin() as conn:
            assert _epoch(conn) == before + 1
        downgrade(fresh_settings, "0007")
        with engine.begin() as conn:
            assert _triggers(conn) == triggers
            assert [conn.execute(text(f"SELECT ecosystem FROM {t}")).scalar_one()
                    for t in tables] == ["npm", "go", "pypi"]
    finally:
        engine.dispose()
