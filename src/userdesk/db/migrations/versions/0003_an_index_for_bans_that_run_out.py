"""an index for bans that run out

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:

    # A plain CREATE INDEX: a batch operation could rebuild users and lose its triggers.
    op.create_index("ix_users_status_until", "users", ["status", "status_until"], unique=False)


def downgrade() -> None:

    op.drop_index("ix_users_status_until", table_name="users")
