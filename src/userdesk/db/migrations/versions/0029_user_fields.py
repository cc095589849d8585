"""Custom user fields: the organization's schema (user_fields), the values on the users
row (users.attributes) and their index rows for the query language (user_field_values)

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0029"
down_revision = "0028"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
ATTRIBUTES = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "user_fields",
        sa.Column("id", ID, nullable=False),
        sa.Column("key", sa.String(length=40), nullable=False),
        sa.Column("label", sa.String(length=100), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("options", sa.JSON(), nullable=True),
        sa.Column("required_on", sa.JSON(), nullable=False),
        sa.Column("visibility", sa.String(length=8), nullable=False),
        sa.Column("editable_by", sa.String(length=8), nullable=False),
        sa.Column("validation", sa.JSON(), nullable=False),
        sa.Column("searchable", sa.Boolean(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("organization_id", ID, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_user_fields_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_fields")),
        sa.UniqueConstraint(
            "organization_id", "key", name=op.f("uq_user_fields_organization_id_key")
        ),
    )
    op.create_index(
        op.f("ix_user_fields_organization_id"), "user_fields", ["organization_id"], unique=False
    )
    op.create_table(
        "user_field_values",
        sa.Column("id", ID, nullable=False),
        sa.Column("field_id", ID, nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("text_value", sa.String(length=500), nullable=True),
        sa.Column("number_value", sa.Float(), nullable=True),
        sa.Column("date_value", sa.Date(), nullable=True),
        sa.Column("organization_id", ID, nullable=False),
        sa.ForeignKeyConstraint(
            ["field_id"],
            ["user_fields.id"],
            name=op.f("fk_user_field_values_field_id_user_fields"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_user_field_values_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_user_field_values_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_field_values")),
    )
    for name, columns in (
        ("ix_user_field_values_text", ["field_id", "text_value", "user_id"]),
        ("ix_user_field_values_number", ["field_id", "number_value", "user_id"]),
        ("ix_user_field_values_date", ["field_id", "date_value", "user_id"]),
        ("ix_user_field_values_user", ["user_id"]),
    ):
        op.create_index(name, "user_field_values", columns, unique=False)
    # Null for a user without values: no default, so no table rewrite on a large users table.
    op.add_column("users", sa.Column("attributes", ATTRIBUTES, nullable=True))


def downgrade() -> None:
    op.drop_column("users", "attributes")
    for name in (
        "ix_user_field_values_user",
        "ix_user_field_values_date",
        "ix_user_field_values_number",
        "ix_user_field_values_text",
    ):
        op.drop_index(name, table_name="user_field_values")
    op.drop_table("user_field_values")
    op.drop_index(op.f("ix_user_fields_organization_id"), table_name="user_fields")
    op.drop_table("user_fields")
