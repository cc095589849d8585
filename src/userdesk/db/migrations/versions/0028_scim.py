"""SCIM provisioning: the tokens identity providers call /scim/v2 with, and the
provider's externalId on the users row (indexed per organization) and on groups

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
EXTERNAL_ID_INDEX = "ix_users_org_external_id"


def upgrade() -> None:
    op.create_table(
        "scim_tokens",
        sa.Column("id", ID, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_by_id", ID, nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("organization_id", ID, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["users.id"],
            name=op.f("fk_scim_tokens_created_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_scim_tokens_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scim_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_scim_tokens_token_hash")),
    )
    op.create_index(
        op.f("ix_scim_tokens_organization_id"), "scim_tokens", ["organization_id"], unique=False
    )
    # SCIM's externalId: what the identity provider calls the user; filterable, so indexed.
    op.add_column("users", sa.Column("external_id", sa.String(length=255), nullable=True))
    # Partial: users without an externalId (most imports) do not pay for it.
    op.create_index(
        EXTERNAL_ID_INDEX,
        "users",
        ["organization_id", "external_id"],
        sqlite_where=sa.text("external_id IS NOT NULL"),
        postgresql_where=sa.text("external_id IS NOT NULL"),
    )
    op.add_column("groups", sa.Column("external_id", sa.String(length=255), nullable=True))


def downgrade() -> None:
    op.drop_column("groups", "external_id")
    op.drop_index(EXTERNAL_ID_INDEX, table_name="users")
    op.drop_column("users", "external_id")
    op.drop_index(op.f("ix_scim_tokens_organization_id"), table_name="scim_tokens")
    op.drop_table("scim_tokens")
