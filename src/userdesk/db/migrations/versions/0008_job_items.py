"""job items: an import's row report as rows, not one JSON document rewritten per batch

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    items = op.create_table(
        "job_items",
        sa.Column("job_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("fate", sa.String(length=32), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column(
            "organization_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["organization_id"], ["organizations.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("job_id", "number"),
    )
    jobs = sa.table(
        "jobs",
        sa.column("id", sa.Integer()),
        sa.column("organization_id", sa.Integer()),
        sa.column("result", sa.JSON()),
    )
    connection = op.get_bind()
    for job_id, organization_id, result in connection.execute(
        sa.select(jobs.c.id, jobs.c.organization_id, jobs.c.result)
    ):
        found = json.loads(result) if isinstance(result, str) else result
        if found:
            op.bulk_insert(
                items,
                [
                    {
                        "job_id": job_id,
                        "organization_id": organization_id,
                        "number": item["row"],
                        "email": item.get("email", ""),
                        "fate": item["fate"],
                        "ok": "detail" not in item,
                        "detail": item.get("detail"),
                    }
                    for item in found
                ],
            )
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.drop_column("result")


def downgrade() -> None:
    op.add_column(
        "jobs", sa.Column("result", sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
    )
    op.drop_table("job_items")
