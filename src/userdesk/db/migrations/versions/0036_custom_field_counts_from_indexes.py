"""Custom-field filters counted and checked from indexes alone: user_field_values by
(field, user), users by id with what the tabs count

A count on a custom field (`plan:pro`: 200,000 users of a million) read every user and
looked each one's value up, or sampled them so: 120-160 ms, estimated. It now reads the
field's matches block of ids by block of ids (users.service._field_counts) and finds
each by id. Two indexes make that cheap:

- `ix_user_field_values_field_user` (field_id, user_id, text_value, number_value,
  date_value): a field's values for a range of user ids, or for one user, whatever the
  comparison (0029's indexes lead with the value: `seats:>10` could not be read for a
  block of ids, nor checked on one user, without reading every row of the user's values
  or every value above 10); also a searchable field's text checked on one user (free
  text on a common prefix, query.builder._or_in_fields). Covering, so no row is read.
- `ix_users_tally` (id, organization_id, status, last_login_at): a user found by id
  with what the tabs count (status, never signed in) and the organization's scope,
  without reading the user's row: on SQLite a row lookup of a 2 GB table costs three
  times an entry of this index (10,000 matches: 11 against 3.5 ms of CPU). The common
  count's sample (blocks of ids) reads it too when its terms need no other column.

SQLite statistics for both are made when the database has statistics (see 0031).

Revision ID: 0036
Revises: 0035
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0036"
down_revision = "0035"
branch_labels = None
depends_on = None

VALUES_INDEX = "ix_user_field_values_field_user"
USERS_INDEX = "ix_users_tally"


def upgrade() -> None:
    op.create_index(
        VALUES_INDEX,
        "user_field_values",
        ["field_id", "user_id", "text_value", "number_value", "date_value"],
    )
    op.create_index(USERS_INDEX, "users", ["id", "organization_id", "status", "last_login_at"])
    if op.get_bind().dialect.name == "sqlite":
        analyzed = (
            op.get_bind()
            .exec_driver_sql(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_stat1'"
            )
            .first()
        )
        if analyzed:
            op.execute(f"ANALYZE {VALUES_INDEX}")
            op.execute(f"ANALYZE {USERS_INDEX}")


def downgrade() -> None:
    op.drop_index(USERS_INDEX, table_name="users")
    op.drop_index(VALUES_INDEX, table_name="user_field_values")
