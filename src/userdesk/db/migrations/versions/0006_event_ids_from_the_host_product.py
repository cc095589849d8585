"""event ids from the host product

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain operations: a batch one would copy the whole activity table on SQLite.
    op.add_column("activity_events", sa.Column("external_id", sa.String(length=100), nullable=True))
    op.create_index(
        "ix_activity_events_external_id",
        "activity_events",
        ["organization_id", "external_id"],
        unique=True,
    )


def downgrade() -> None:
    op.drop_index("ix_activity_events_external_id", table_name="activity_events")
    with op.batch_alter_table("activity_events", schema=None) as batch_op:
        batch_op.drop_column("external_id")
