"""churn runs and the score of each user in each run

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "churn_runs",
        sa.Column("id", ID, nullable=False),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
        sa.Column("model", sa.String(length=32), nullable=False),
        sa.Column("users", sa.Integer(), nullable=False),
        sa.Column("calibration", sa.JSON(), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("organization_id", ID, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_churn_runs_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_churn_runs")),
    )
    op.create_index(op.f("ix_churn_runs_organization_id"), "churn_runs", ["organization_id"])
    op.create_table(
        "churn_scores",
        sa.Column("id", ID, nullable=False),
        sa.Column("run_id", ID, nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("probability", sa.Float(), nullable=False),
        sa.Column("level", sa.String(length=8), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("organization_id", ID, nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_churn_scores_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["churn_runs.id"],
            name=op.f("fk_churn_scores_run_id_churn_runs"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_churn_scores_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_churn_scores")),
    )
    op.create_index("ix_churn_scores_user_run", "churn_scores", ["user_id", "run_id"])


def downgrade() -> None:
    op.drop_index("ix_churn_scores_user_run", table_name="churn_scores")
    op.drop_table("churn_scores")
    op.drop_index(op.f("ix_churn_runs_organization_id"), table_name="churn_runs")
    op.drop_table("churn_runs")
