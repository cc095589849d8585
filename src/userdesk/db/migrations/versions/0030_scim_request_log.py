"""scim_requests: the log of what identity providers did at /scim/v2 (Settings >
Provisioning); and scim.manage, held by every built-in Administrator

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0030"
down_revision = "0029"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
ROLES = sa.table(
    "roles",
    sa.column("id", ID),
    sa.column("organization_id", ID),
    sa.column("name", sa.String()),
    sa.column("builtin", sa.Boolean()),
)
ROLE_PERMISSIONS = sa.table(
    "role_permissions",
    sa.column("role_id", ID),
    sa.column("organization_id", ID),
    sa.column("permission", sa.String()),
)
SCIM_MANAGE = "scim.manage"
ERRORS = "status >= 400"


def upgrade() -> None:
    op.create_table(
        "scim_requests",
        sa.Column("id", ID, nullable=False),
        sa.Column("token_id", ID, nullable=True),
        sa.Column("method", sa.String(length=10), nullable=False),
        sa.Column("path", sa.String(length=500), nullable=False),
        sa.Column("status", sa.SmallInteger(), nullable=False),
        sa.Column("scim_type", sa.String(length=40), nullable=True),
        sa.Column("detail", sa.String(length=300), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("organization_id", ID, nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_scim_requests_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["token_id"],
            ["scim_tokens.id"],
            name=op.f("fk_scim_requests_token_id_scim_tokens"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scim_requests")),
    )
    # The latest N of an organization, and (partial) its latest errors.
    op.create_index(
        "ix_scim_requests_organization_id_id", "scim_requests", ["organization_id", "id"]
    )
    op.create_index(
        "ix_scim_requests_errors",
        "scim_requests",
        ["organization_id", "id"],
        sqlite_where=sa.text(ERRORS),
        postgresql_where=sa.text(ERRORS),
    )
    connection = op.get_bind()
    holders = sa.select(ROLE_PERMISSIONS.c.role_id).where(
        ROLE_PERMISSIONS.c.permission == SCIM_MANAGE
    )
    administrators = connection.execute(
        sa.select(ROLES.c.id, ROLES.c.organization_id).where(
            ROLES.c.name == "Administrator",
            ROLES.c.builtin.is_(True),
            ROLES.c.id.not_in(holders),
        )
    ).all()
    if administrators:
        op.bulk_insert(
            ROLE_PERMISSIONS,
            [
                {"role_id": role_id, "organization_id": organization_id, "permission": SCIM_MANAGE}
                for role_id, organization_id in administrators
            ],
        )


def downgrade() -> None:
    op.execute(ROLE_PERMISSIONS.delete().where(ROLE_PERMISSIONS.c.permission == SCIM_MANAGE))
    op.drop_index("ix_scim_requests_errors", table_name="scim_requests")
    op.drop_index("ix_scim_requests_organization_id_id", table_name="scim_requests")
    op.drop_table("scim_requests")
