"""upstream sources: the file hosts their pages may link to

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06 02:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Space-separated hosts (host or host:port); empty = any public https host.
    with op.batch_alter_table("upstream_sources") as batch:
        batch.add_column(sa.Column("file_hosts", sa.Text(), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("upstream_sources") as batch:
        batch.drop_column("file_hosts")
