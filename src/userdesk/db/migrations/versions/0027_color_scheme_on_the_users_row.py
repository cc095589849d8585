"""a person's color scheme (light, dark, or the system's) on the users row

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None

# As users.models.COLOR_SCHEMES has them; a migration keeps its own copy of what it wrote.
CHECK = "color_scheme IN ('system', 'light', 'dark')"


def upgrade() -> None:
    # Chosen on /me and applied by the base template; everyone starts on the system's. The
    # check goes with the column (SQLite adds a constraint to a table no other way short
    # of copying it), under the name the models' naming convention gives it.
    op.add_column(
        "users",
        sa.Column(
            "color_scheme",
            sa.String(8),
            sa.CheckConstraint(CHECK, name=op.f("ck_users_color_scheme")),
            nullable=False,
            server_default="system",
        ),
    )


def downgrade() -> None:
    # A column's own check goes with it, on SQLite too (its DROP COLUMN refuses only table
    # checks).
    op.drop_column("users", "color_scheme")
