"""case-insensitive names: one project per lower(name), one file per
(version, lower(filename))

Look-alike names (``SecretProj`` beside ``secretproj``, ``README.txt``
beside ``readme.txt`` in one version) are refused by the application; these
unique indexes on ``lower(...)`` make the database refuse them too, also
when two requests race. The exact-name unique constraints stay: the
ON CONFLICT clauses name them.

Existing rows that already collide stop the upgrade with a message listing
them (rename or delete one of each pair, then upgrade again): choosing which
one to keep is the operator's decision, not a migration's.

Note for later migrations: SQLite cannot reflect expression-based indexes,
so a ``batch_alter_table`` on ``projects`` or ``files`` (which rebuilds the
table from its reflection) drops these indexes; recreate them afterwards.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 03:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PROJECTS_INDEX = "uq_projects_name_lower"
FILES_INDEX = "uq_files_version_filename_lower"


def _refuse_collisions() -> None:
    conn = op.get_bind()
    projects = conn.execute(
        sa.text(
            "SELECT lower(name) FROM projects GROUP BY lower(name) HAVING count(*) > 1"
            " ORDER BY lower(name) LIMIT 20"
        )
    ).scalars().all()
    files = conn.execute(
        sa.text(
            "SELECT version_id, lower(filename) FROM files GROUP BY version_id, lower(filename)"
            " HAVING count(*) > 1 ORDER BY version_id, lower(filename) LIMIT 20"
        )
    ).all()
    if not projects and not files:
        return
    found = [f"project {name!r}" for name in projects]
    found += [f"file {name!r} of version id {vid}" for vid, name in files]
    raise RuntimeError(
        "cannot add the case-insensitive unique indexes: these names exist in "
        "several spellings that differ only in case: "
        + "; ".join(found)
        + ". Rename or delete all but one of each, then run the upgrade again."
    )


def upgrade() -> None:
    _refuse_collisions()
    op.create_index(PROJECTS_INDEX, "projects", [sa.text("lower(name)")], unique=True)
    op.create_index(
        FILES_INDEX, "files", [sa.column("version_id"), sa.text("lower(filename)")], unique=True
    )


def downgrade() -> None:
    op.drop_index(FILES_INDEX, table_name="files")
    op.drop_index(PROJECTS_INDEX, table_name="projects")
