"""import files: an import's CSV in a row of its own, out of its job's params

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-30
"""

from __future__ import annotations

import hashlib
import json

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JOBS = sa.table(
    "jobs",
    sa.column("id", ID),
    sa.column("organization_id", ID),
    sa.column("kind", sa.String()),
    sa.column("params", sa.JSON()),
)


def upgrade() -> None:
    files = op.create_table(
        "import_files",
        sa.Column("job_id", ID, nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("organization_id", ID, nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["jobs.id"],
            name=op.f("fk_import_files_job_id_jobs"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_import_files_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("job_id", name=op.f("pk_import_files")),
    )
    connection = op.get_bind()
    for job_id, organization_id, raw in connection.execute(
        sa.select(JOBS.c.id, JOBS.c.organization_id, JOBS.c.params).where(
            JOBS.c.kind == "users.import"
        )
    ):
        params = json.loads(raw) if isinstance(raw, str) else dict(raw or {})
        text = params.pop("csv", None)
        if text is None:
            continue
        op.bulk_insert(
            files,
            [
                {
                    "job_id": job_id,
                    "organization_id": organization_id,
                    "digest": hashlib.sha256(text.encode()).hexdigest(),
                    "content": text,
                }
            ],
        )
        connection.execute(sa.update(JOBS).where(JOBS.c.id == job_id).values(params=params))


def downgrade() -> None:
    connection = op.get_bind()
    files = sa.table("import_files", sa.column("job_id", ID), sa.column("content", sa.Text()))
    for job_id, text in connection.execute(sa.select(files.c.job_id, files.c.content)):
        raw = connection.execute(sa.select(JOBS.c.params).where(JOBS.c.id == job_id)).scalar()
        params = json.loads(raw) if isinstance(raw, str) else dict(raw or {})
        connection.execute(
            sa.update(JOBS).where(JOBS.c.id == job_id).values(params={**params, "csv": text})
        )
    op.drop_table("import_files")
