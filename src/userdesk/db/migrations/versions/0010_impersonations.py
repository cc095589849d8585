"""impersonations, the sessions they open, and the impersonator's name in the audit log

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "impersonations",
        sa.Column("id", ID, nullable=False),
        sa.Column("admin_id", ID, nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("link_expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("session_ends_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_reason", sa.String(length=200), nullable=True),
        sa.Column("organization_id", ID, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["admin_id"],
            ["users.id"],
            name=op.f("fk_impersonations_admin_id_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_impersonations_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_impersonations_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_impersonations")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_impersonations_token_hash")),
    )
    op.create_index(
        op.f("ix_impersonations_organization_id"), "impersonations", ["organization_id"]
    )
    op.create_index(op.f("ix_impersonations_user_id"), "impersonations", ["user_id"])
    with op.batch_alter_table("sessions") as batch_op:
        batch_op.add_column(sa.Column("impersonation_id", ID, nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_sessions_impersonation_id_impersonations"),
            "impersonations",
            ["impersonation_id"],
            ["id"],
            ondelete="CASCADE",
        )
    op.add_column("audit_events", sa.Column("impersonator_name", sa.String(300), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("audit_events") as batch_op:
        batch_op.drop_column("impersonator_name")
    with op.batch_alter_table("sessions") as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_sessions_impersonation_id_impersonations"), type_="foreignkey"
        )
        batch_op.drop_column("impersonation_id")
    op.drop_index(op.f("ix_impersonations_user_id"), table_name="impersonations")
    op.drop_index(op.f("ix_impersonations_organization_id"), table_name="impersonations")
    op.drop_table("impersonations")
