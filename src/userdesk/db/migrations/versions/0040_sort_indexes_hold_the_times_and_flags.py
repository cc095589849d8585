"""the indexes of the sorts by created time and by name hold the times and flags that
filters test, so that a page read along them tests each entry before reading its row

Revision ID: 0040
Revises: 0038
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0040"
down_revision = "0038"
branch_labels = None
depends_on = None

# A page read in sort order tests its filters on each user it passes: a range of last seen
# or created, login:never, validated:, verified:, a team. Along an index that holds none
# of those, each entry costs its row (some 6 µs at a million users, found anywhere in the
# table), and a filter whose matches lie far along the sort reads thousands of rows for a
# page: "seen:>=2026-06-01 seen:<2026-07-01" by created passed 9,100 users, 57-73 ms,
# where with the seen time in the index SQLite tests it on the entry and reads only the
# 51 matching rows (its deferred seek): 1.4-6.7 ms. ix_users_org_last_seen does so for the
# sort by last seen (0026); ix_users_org_status_* lead with a status, and the email's is
# the unique constraint's. Each keeps its columns first, so it answers what it did.
INDEXES = {
    "ix_users_org_created": (
        ["organization_id", "created_at", "id"],
        ["last_seen_at", "last_login_at", "validated_at", "email_verified_at", "team_id"],
    ),
    "ix_users_org_name": (
        ["organization_id", "first_name", "last_name", "id"],
        [
            "last_seen_at",
            "created_at",
            "last_login_at",
            "validated_at",
            "email_verified_at",
            "team_id",
        ],
    ),
}
# On SQLite, ix_users_tally stays the users' newest index (see 0038).
TALLY = "ix_users_tally"
TALLY_COLUMNS = ["id", "organization_id", "status", "last_login_at"]


def upgrade() -> None:
    for index, (leading, held) in INDEXES.items():
        op.drop_index(index, table_name="users")
        op.create_index(index, "users", [*leading, *held])
    _tally_last()


def downgrade() -> None:
    for index, (leading, _) in INDEXES.items():
        op.drop_index(index, table_name="users")
        op.create_index(index, "users", leading)
    _tally_last()


def _tally_last() -> None:
    names = [*INDEXES]
    if op.get_bind().dialect.name == "sqlite":
        op.drop_index(TALLY, table_name="users")
        op.create_index(TALLY, "users", TALLY_COLUMNS)
        names.append(TALLY)
    _analyze(*names)


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
