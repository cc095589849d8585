"""the unique index of events' external ids holds only the events that have one

Revision ID: 0042
Revises: 0040
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0042"
down_revision = "0040"
branch_labels = None
depends_on = None

INDEX = "ix_activity_events_external_id"
COLUMNS = ["organization_id", "external_id"]
# Most events come without an id of the host product's (every demo event does): the index
# held an entry for each all the same, 2 GB at 68 M events and 40 s of a 10 M-user demo's
# build, and one more B-tree insert per event stored. It is unique as before: NULLs never
# collided, on either database; the lookup by ids (`external_id IN (...)`) implies them
# given, so both planners still use it.
GIVEN = "external_id IS NOT NULL"


def upgrade() -> None:
    op.drop_index(INDEX, table_name="activity_events")
    op.create_index(
        INDEX,
        "activity_events",
        COLUMNS,
        unique=True,
        sqlite_where=sa.text(GIVEN),
        postgresql_where=sa.text(GIVEN),
    )
    _analyze()


def _analyze() -> None:
    """On an analyzed SQLite database, statistics for the index made again (see 0019)."""
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    analyzed = bind.exec_driver_sql(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_stat1'"
    ).first()
    if analyzed:
        op.execute(f"ANALYZE {INDEX}")


def downgrade() -> None:
    op.drop_index(INDEX, table_name="activity_events")
    op.create_index(INDEX, "activity_events", COLUMNS, unique=True)
    _analyze()
