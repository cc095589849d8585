"""pending email

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:

    # A plain ADD COLUMN: a batch operation could rebuild users and lose its triggers.
    op.add_column("users", sa.Column("pending_email", sa.String(length=254), nullable=True))


def downgrade() -> None:

    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("pending_email")
