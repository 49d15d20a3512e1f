"""one word per concept: the ``ecosystem`` columns are named ``format``

``upstream_sources``, ``cached_urls`` and ``artifact_dependencies`` named
the same thing as ``packages.format`` with another word. The values do not
change (pypi, npm, go).

A plain column rename (``ALTER TABLE ... RENAME COLUMN``, SQLite 3.25 and
later, PostgreSQL) in place: no table is rebuilt, so the content-epoch
triggers of ``upstream_sources`` (0007) and the foreign keys and indexes of
the other two stay as they are. A ``batch_alter_table`` would rebuild the
tables on SQLite and drop those triggers. The test of migrations checks that
they are all still there after the upgrade.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 06:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("upstream_sources", "cached_urls", "artifact_dependencies")


def upgrade() -> None:
    for table in TABLES:
        op.alter_column(table, "ecosystem", new_column_name="format")


def downgrade() -> None:
    for table in TABLES:
        op.alter_column(table, "format", new_column_name="ecosystem")
