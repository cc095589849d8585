"""dashboard: daily users by team and status, each run's users by level, scores by run

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "user_status_days",
        sa.Column("id", ID, nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("team_id", ID, nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("users", sa.Integer(), nullable=False),
        sa.Column("organization_id", ID, nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_user_status_days_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_status_days")),
    )
    op.create_index("ix_user_status_days_org_day", "user_status_days", ["organization_id", "day"])
    op.create_table(
        "churn_run_levels",
        sa.Column("id", ID, nullable=False),
        sa.Column("run_id", ID, nullable=False),
        sa.Column("team_id", ID, nullable=True),
        sa.Column("level", sa.String(length=8), nullable=False),
        sa.Column("users", sa.Integer(), nullable=False),
        sa.Column("organization_id", ID, nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_churn_run_levels_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["churn_runs.id"],
            name=op.f("fk_churn_run_levels_run_id_churn_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_churn_run_levels")),
    )
    op.create_index("ix_churn_run_levels_run", "churn_run_levels", ["run_id"])
    op.create_index("ix_churn_scores_run_probability", "churn_scores", ["run_id", "probability"])


def downgrade() -> None:
    op.drop_index("ix_churn_scores_run_probability", table_name="churn_scores")
    op.drop_index("ix_churn_run_levels_run", table_name="churn_run_levels")
    op.drop_table("churn_run_levels")
    op.drop_index("ix_user_status_days_org_day", table_name="user_status_days")
    op.drop_table("user_status_days")
