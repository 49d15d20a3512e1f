"""content epoch: one number raised by every committed content change

A single-row table ``content_epoch`` and the triggers that raise its value
whenever a transaction changes what a read answers (projects, packages,
versions, files, members, upstream sources, artifacts deleted by gc); see
``db/triggers.py``. Servers drop their near cache when it moves, whoever
wrote: a replica, the CLI on the host, a hand-run statement.

Note for later migrations: a ``batch_alter_table`` on SQLite rebuilds the
table and loses its triggers; recreate them afterwards (``epoch_create_statements``).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 05:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from orchard.db.triggers import EPOCH_TABLE, epoch_create_statements, epoch_drop_statements

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    table = op.create_table(
        EPOCH_TABLE,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("value", sa.BigInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_content_epoch")),
    )
    op.bulk_insert(table, [{"id": 1, "value": 0}])
    for statement in epoch_create_statements(op.get_bind().dialect.name):
        op.execute(statement)


def downgrade() -> None:
    for statement in epoch_drop_statements(op.get_bind().dialect.name):
        op.execute(statement)
    op.drop_table(EPOCH_TABLE)
