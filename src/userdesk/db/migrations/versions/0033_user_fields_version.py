"""organizations.user_fields_version: which version of its custom fields each process holds

Every change to an organization's user fields (users.fields) sets it to a new random
number in the same transaction (0: never changed); a request reads it with its caller (the
session or the API key, no statement more), and a server process reuses the fields it read
last while the number is the same (users.attributes.schema): never stale after a change
made by another process.

Revision ID: 0033
Revises: 0032
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0033"
down_revision = "0032"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "organizations",
        sa.Column("user_fields_version", sa.BigInteger(), server_default="0", nullable=False),
    )


def downgrade() -> None:
    op.drop_column("organizations", "user_fields_version")
