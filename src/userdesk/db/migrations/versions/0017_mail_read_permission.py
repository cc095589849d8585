"""mail.read: the Mailbox gets a permission of its own, held by every built-in Administrator

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
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
MAIL_READ = "mail.read"


def upgrade() -> None:
    connection = op.get_bind()
    holders = sa.select(ROLE_PERMISSIONS.c.role_id).where(
        ROLE_PERMISSIONS.c.permission == MAIL_READ
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
                {"role_id": role_id, "organization_id": organization_id, "permission": MAIL_READ}
                for role_id, organization_id in administrators
            ],
        )


def downgrade() -> None:
    op.execute(ROLE_PERMISSIONS.delete().where(ROLE_PERMISSIONS.c.permission == MAIL_READ))
