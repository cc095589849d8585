"""Churn scoring reads the events from an index alone: activity_events by (user_id,
occurred_at, type), in place of (user_id, occurred_at)

Scoring adds up each user's events per type in one pass (churn.scoring._event_statement)
over a range of user ids: with the type in the index, no event row is read but those of
the types whose properties weigh them. The new index leads with the old one's columns, so
it answers what that one did (a user's timeline, the events of a range of users in a
window) and replaces it: an event written still updates one index of the user's.

SQLite statistics for it are made when the database has statistics (see 0031).

Revision ID: 0037
Revises: 0036
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0037"
down_revision = "0036"
branch_labels = None
depends_on = None

INDEX = "ix_activity_events_user_time_type"
REPLACED = "ix_activity_events_user_time"


def upgrade() -> None:
    op.create_index(INDEX, "activity_events", ["user_id", "occurred_at", "type"])
    op.drop_index(REPLACED, table_name="activity_events")
    if op.get_bind().dialect.name == "sqlite":
        analyzed = (
            op.get_bind()
            .exec_driver_sql(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_stat1'"
            )
            .first()
        )
        if analyzed:
            op.execute(f"ANALYZE {INDEX}")


def downgrade() -> None:
    op.create_index(REPLACED, "activity_events", ["user_id", "occurred_at"])
    op.drop_index(INDEX, table_name="activity_events")
