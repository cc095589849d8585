"""throttle_hits: attempts counted by the rate limits and failed sign-ins per account

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "throttle_hits",
        sa.Column("id", ID, nullable=False),
        sa.Column("organization_id", ID, nullable=True),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_throttle_hits_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_throttle_hits")),
    )
    op.create_index("ix_throttle_hits_action_key_at", "throttle_hits", ["action", "key", "at"])
    op.create_index(op.f("ix_throttle_hits_at"), "throttle_hits", ["at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_throttle_hits_at"), table_name="throttle_hits")
    op.drop_index("ix_throttle_hits_action_key_at", table_name="throttle_hits")
    op.drop_table("throttle_hits")
