"""PostgreSQL's statistics of custom-field values know which field holds which value

Revision ID: 0043
Revises: 0042
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0043"
down_revision = "0042"
branch_labels = None
depends_on = None

# A value belongs to one field ("new zealand" is only ever a country), which PostgreSQL's
# per-column statistics cannot tell: it multiplied the field's share of the rows by the
# value's and took the 20,000 New Zealanders of a million users for 6,200. Beside a status
# ('country:"New Zealand" status:pending' by name) it then hashed them all and read the
# status's 120,000 users (80 to 120 ms) where a read along the status's index, each user
# looked up in (field, value, user), fills the page in 10 to 12. Each kind of value
# counted together with its field (their most common pairs, and how one decides the
# other) gives a share near the truth. Text alone was not enough: with plan:team known
# for common, a count of "plan:team seats:>100" was then driven by seats:>100, still taken
# for 24,000 users where it has 218,000 (5 s, against 8 ms with the numbers' statistics).
# SQLite's planner has nothing like it (the builder counts a term's users instead).
STATISTICS = {
    "st_user_field_values_field_text": "text_value",
    "st_user_field_values_field_number": "number_value",
    "st_user_field_values_field_date": "date_value",
}


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name, column in STATISTICS.items():
        op.execute(
            f"CREATE STATISTICS {name} (mcv, dependencies) "
            f"ON field_id, {column} FROM user_field_values"
        )
    # Statistics made now, not at autovacuum's next analyze of the table.
    op.execute("ANALYZE user_field_values")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name in STATISTICS:
        op.execute(f"DROP STATISTICS IF EXISTS {name}")
