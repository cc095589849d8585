"""PostgreSQL: an index per sort of the Users list that holds every column its filters
test, so that a page read in sort order reads that index alone

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

# What the list's conditions test (userdesk.query.builder): the search text, and each
# column a filter names; the id, for a role's or a group's links.
FILTERED = (
    "id, search_text, status, team_id, email_verified_at, validated_at, "
    "last_login_at, last_seen_at, created_at, churn_level"
)
# (name, the sort's columns after organization_id); "ix_users_search_" marks them as made
# here, not by the models (userdesk.db.registry.NOT_MODELED).
INDEXES = (
    ("ix_users_search_by_name", "first_name, last_name, id"),
    ("ix_users_search_by_email", "email_normalized"),
    ("ix_users_search_by_seen", "last_seen_at, id"),
    ("ix_users_search_by_created", "created_at, id"),
)


def upgrade() -> None:
    # A page of users matching a term is read along its sort's index, each row tested
    # (userdesk.db.paging finds its ids first, then its rows). Along the sort's own index
    # each row tested is a page of the table read, many not in shared buffers: at a
    # million users "ann group:Trial" by email tests 22,800 rows for its 51 (24,000
    # buffers, 39 ms of statement); from this index alone, 1,400 buffers. PostgreSQL
    # reads an index alone where the visibility map says a table page holds no change
    # since the last VACUUM (autovacuum's), and reads the row for the others.
    # Some 140 to 170 MB each at a million users. SQLite reads a row and an index entry
    # at about the same cost, and pays for each index at every insert (imports):
    # PostgreSQL only.
    if op.get_bind().dialect.name != "postgresql":
        return
    for name, columns in INDEXES:
        included = ", ".join(c for c in FILTERED.split(", ") if c not in columns.split(", "))
        op.execute(
            f"CREATE INDEX {name} ON users (organization_id, {columns}) INCLUDE ({included})"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name, _ in INDEXES:
        op.execute(f"DROP INDEX {name}")
