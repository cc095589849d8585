"""SCIM's name.familyName index holds the status: a common prefix's page and count read it alone

`filter=name.familyName sw "Mar"` selects thousands of users of a million; SCIM sees those
not deleted (`status != 'deleted'`). With the status outside 0031's index, each match was
a row read, twice (the page's ids, sorted; then totalResults): 48 to 51 ms. With it inside,
both read the index alone. The index keeps its name (and 0031's shape in front), so what
reads it stays as it was. PostgreSQL gets the same columns (an index-only scan there
too). Named ix_users_search_*: made by hand, left out of the models (db.registry).

Revision ID: 0034
Revises: 0033
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0034"
down_revision = "0033"
branch_labels = None
depends_on = None

INDEX = "ix_users_search_last_name_lower"


def upgrade() -> None:
    op.execute(f"DROP INDEX {INDEX}")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"CREATE INDEX {INDEX} ON users "
            '(organization_id, (lower(last_name) COLLATE "C"), status)'
        )
    else:
        op.execute(
            f"CREATE INDEX {INDEX} ON users (organization_id, last_name COLLATE NOCASE, status)"
        )
        _analyze()


def _analyze() -> None:
    """On an analyzed SQLite database, statistics for the index made again (see 0031)."""
    bind = op.get_bind()
    analyzed = bind.exec_driver_sql(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_stat1'"
    ).first()
    if analyzed:
        op.execute(f"ANALYZE {INDEX}")


def downgrade() -> None:
    op.execute(f"DROP INDEX {INDEX}")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f'CREATE INDEX {INDEX} ON users (organization_id, (lower(last_name) COLLATE "C"))'
        )
    else:
        op.execute(f"CREATE INDEX {INDEX} ON users (organization_id, last_name COLLATE NOCASE)")
        _analyze()
