"""custom fields as columns of the Users list: chosen per admin, saved in segments

users.list_columns: the keys of the custom fields a person (an admin) shows as extra
columns of the Users list, kept like their color scheme; segments.columns: the same keys
saved with a segment's query and sort. Both JSON lists, NULL when none.

Revision ID: 0032
Revises: 0031
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0032"
down_revision = "0031"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("users", sa.Column("list_columns", sa.JSON(), nullable=True))
    op.add_column("segments", sa.Column("columns", sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_column("segments", "columns")
    op.drop_column("users", "list_columns")
