"""packages unique by (project, name, format)

One project may hold a PyPI ``yaml``, an npm ``yaml`` and a generic
``yaml`` at once, each with its own versions. Rows unique by (project,
name) are unique by the triple too: the upgrade loses nothing.

SQLite cannot drop an inline UNIQUE constraint: batch mode rebuilds
``packages`` (copy, drop, rename). That is only safe with foreign keys off
(with them on, dropping ``packages`` would cascade to versions and files and
fire the ref_count triggers); Alembic's own engine never turns them on, and
the upgrade refuses to run if they are. Only ``packages`` is rebuilt:
``projects`` and ``files`` carry 0005's expression indexes, which batch mode
cannot reflect.

The downgrade refuses while a (project, name) is held by several formats,
listing them: which one to keep is the operator's decision.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 03:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD = "uq_packages_project_name"
NEW = "uq_packages_project_name_format"
# Reflect ``packages`` alone, not the ``projects`` its key refers to (whose
# expression index SQLite's reflection cannot read).
NO_REFERRED = {"resolve_fks": False}


def _refuse_foreign_keys_on() -> None:
    conn = op.get_bind()
    if conn.dialect.name == "sqlite" and conn.exec_driver_sql("PRAGMA foreign_keys").scalar():
        raise RuntimeError(
            "rebuilding the packages table needs PRAGMA foreign_keys=OFF "
            "(with it on, the rebuild would cascade to versions and files)"
        )


def upgrade() -> None:
    _refuse_foreign_keys_on()
    with op.batch_alter_table("packages", reflect_kwargs=NO_REFERRED) as batch:
        batch.drop_constraint(OLD, type_="unique")
        batch.create_unique_constraint(NEW, ["project_id", "name", "format"])


def downgrade() -> None:
    _refuse_foreign_keys_on()
    shared = op.get_bind().execute(
        sa.text(
            "SELECT p.name, k.name FROM packages k JOIN projects p ON p.id = k.project_id"
            " GROUP BY p.name, k.name HAVING count(*) > 1 ORDER BY p.name, k.name LIMIT 20"
        )
    ).all()
    if shared:
        raise RuntimeError(
            "cannot restore one package per (project, name): these names are held by "
            "packages of several formats: "
            + "; ".join(f"{project}/{name}" for project, name in shared)
            + ". Delete or rename all but one of each, then run the downgrade again."
        )
    with op.batch_alter_table("packages", reflect_kwargs=NO_REFERRED) as batch:
        batch.drop_constraint(NEW, type_="unique")
        batch.create_unique_constraint(OLD, ["project_id", "name"])
