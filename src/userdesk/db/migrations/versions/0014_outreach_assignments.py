"""outreach assignments: a support agent asked to contact a user at risk

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "outreach_assignments",
        sa.Column("id", ID, nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("agent_id", ID, nullable=False),
        sa.Column("assigned_by_id", ID, nullable=True),
        sa.Column("assigned_by_name", sa.String(length=300), nullable=False),
        sa.Column("note", sa.String(length=1000), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("done_by_name", sa.String(length=300), nullable=True),
        sa.Column("organization_id", ID, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["users.id"],
            name=op.f("fk_outreach_assignments_agent_id_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["assigned_by_id"],
            ["users.id"],
            name=op.f("fk_outreach_assignments_assigned_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_outreach_assignments_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_outreach_assignments_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outreach_assignments")),
    )
    op.create_index(
        op.f("ix_outreach_assignments_organization_id"),
        "outreach_assignments",
        ["organization_id"],
    )
    op.create_index(op.f("ix_outreach_assignments_user_id"), "outreach_assignments", ["user_id"])
    op.create_index(op.f("ix_outreach_assignments_agent_id"), "outreach_assignments", ["agent_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_outreach_assignments_agent_id"), table_name="outreach_assignments")
    op.drop_index(op.f("ix_outreach_assignments_user_id"), table_name="outreach_assignments")
    op.drop_index(
        op.f("ix_outreach_assignments_organization_id"), table_name="outreach_assignments"
    )
    op.drop_table("outreach_assignments")
