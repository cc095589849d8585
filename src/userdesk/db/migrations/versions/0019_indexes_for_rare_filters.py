"""indexes that list the users of a rare filter: churn level; link tables led by role, group

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # churn:high had no index: with nobody scored yet, a page read all the users.
    op.create_index("ix_users_org_churn", "users", ["organization_id", "churn_level"])
    # A role's or a group's users listed from the index alone (the old indexes held the
    # role or group only, and each user id was read from the table).
    op.create_index("ix_user_roles_role_user", "user_roles", ["role_id", "user_id"])
    op.drop_index("ix_user_roles_role_id", table_name="user_roles")
    op.create_index("ix_user_groups_group_user", "user_groups", ["group_id", "user_id"])
    op.drop_index("ix_user_groups_group_id", table_name="user_groups")
    _analyze(NEW_INDEXES)


NEW_INDEXES = ("ix_users_org_churn", "ix_user_roles_role_user", "ix_user_groups_group_user")


def _analyze(indexes: tuple[str, ...]) -> None:
    """On an analyzed SQLite database, statistics for the new indexes too: SQLite takes an
    index it has none for as highly selective, and would read every user of an
    organization through ix_users_org_churn, then sort them, rather than walk the index of
    the list's sort (one page: 50 rows instead of a million). ANALYZE of an index reads
    only that index."""
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    analyzed = bind.exec_driver_sql(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_stat1'"
    ).first()
    if analyzed:
        for index in indexes:
            op.execute(f"ANALYZE {index}")


def downgrade() -> None:
    op.create_index("ix_user_groups_group_id", "user_groups", ["group_id"])
    op.drop_index("ix_user_groups_group_user", table_name="user_groups")
    op.create_index("ix_user_roles_role_id", "user_roles", ["role_id"])
    op.drop_index("ix_user_roles_role_user", table_name="user_roles")
    op.drop_index("ix_users_org_churn", table_name="users")
