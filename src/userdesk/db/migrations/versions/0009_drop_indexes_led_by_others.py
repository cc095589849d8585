"""drop the organization_id indexes of users and invitations: other indexes lead with it

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_users_organization_id", table_name="users")
    op.drop_index("ix_invitations_organization_id", table_name="invitations")


def downgrade() -> None:
    op.create_index("ix_invitations_organization_id", "invitations", ["organization_id"])
    op.create_index("ix_users_organization_id", "users", ["organization_id"])
