"""the index of the last sign-in holds the last seen time after it (and the validation),
so that a page of users who never signed in, by last seen, reads them in that order from
the index

Revision ID: 0038
Revises: 0037
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0038"
down_revision = "0037"
branch_labels = None
depends_on = None

INDEX = "ix_users_org_last_login"
OLD_COLUMNS = ["organization_id", "last_login_at"]
# login:never holds a large part of the users (a fifth of the demo's), too many to sort
# for a page, so its page by last seen was read along ix_users_org_last_seen, each entry
# tested: by -seen every user ever seen comes first, and those who never signed in were
# never seen, so a page passed every entry of that index to find none (800,000 at a
# million users, 70 ms of CPU, 130-260 ms on a loaded machine). With the last seen time
# (and the id) after the sign-in's, this index lists them in the sort's order: the page
# reads its 51 entries. The validation too, as ix_users_org_last_seen holds it (0026), so
# that "login:never validated:no" tests it on the entry. It answers what it did before
# (its columns lead).
COLUMNS = [*OLD_COLUMNS, "last_seen_at", "id", "validated_at"]


# On SQLite, ix_users_tally (id, ...: migration 0036) is made again after it, so that it
# stays the users' newest index: SQLite's planner, weighing a user found by id through the
# table or through that index (a page of a few users' ids: "lee" by last seen), takes the
# table when that index comes last, and the index, which then reads the row too, when a
# newer one follows it (5 -> 15 ms a page at a million users).
TALLY = "ix_users_tally"
TALLY_COLUMNS = ["id", "organization_id", "status", "last_login_at"]


def upgrade() -> None:
    op.drop_index(INDEX, table_name="users")
    op.create_index(INDEX, "users", COLUMNS)
    if op.get_bind().dialect.name == "sqlite":
        op.drop_index(TALLY, table_name="users")
        op.create_index(TALLY, "users", TALLY_COLUMNS)
    _analyze(INDEX, TALLY)


def _analyze(*indexes: str) -> None:
    """On an analyzed SQLite database, statistics for INDEXES made again (see 0019)."""
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
    op.drop_index(INDEX, table_name="users")
    op.create_index(INDEX, "users", OLD_COLUMNS)
    _analyze(INDEX)
