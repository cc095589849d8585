"""A user's role ids on the users row, kept by the database from user_roles; on
PostgreSQL in the Users list's covering indexes, so that a page with a role filter is
read from its sort's index alone

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None

# The covering indexes of migration 0023, made again with role_ids among the columns
# they hold: (name, the sort's columns after organization_id). The email's becomes the
# unique constraint on the address itself: with both, PostgreSQL took the narrow
# constraint's index for a page by email as often as the covering one (their costs a
# tie at a million users), and read a row for each entry ("son role:Agent": 98,000
# rows, 99,000 buffers, 400 to 550 ms, where the covering index reads 7,000 buffers).
UNIQUE_EMAIL = "uq_users_organization_id_email_normalized"
FILTERED = (
    "id, search_text, status, team_id, email_verified_at, validated_at, "
    "last_login_at, last_seen_at, created_at, churn_level"
)
INDEXES = (
    ("ix_users_search_by_name", "first_name, last_name, id"),
    ("ix_users_search_by_email", "email_normalized"),
    ("ix_users_search_by_seen", "last_seen_at, id"),
    ("ix_users_search_by_created", "created_at, id"),
)

# The one rule: users.role_ids is the user's role ids from user_roles, in increasing
# order ('{}' / '[]' for none). Written by the database after every change of the links
# (a service's, an import's, the demo's bulk inserts, a role's or a user's deletion
# cascading), so that no writer of user_roles can leave it behind. PostgreSQL: this
# function says what the column holds, for the backfill and the triggers alike.
PG_ROLE_IDS = """
CREATE FUNCTION user_role_ids(wanted bigint) RETURNS bigint[] LANGUAGE sql STABLE AS $$
    SELECT coalesce(array_agg(role_id ORDER BY role_id), '{}') FROM user_roles
    WHERE user_id = wanted
$$
"""
# The users of one statement's links at once (its transition tables): an INSERT of 2,000
# links (an import's, the demo's) updates their 2,000 users in one statement. Their rows
# are locked first, in id order; the UPDATE after, a statement of its own, then sees
# every link committed before it began (a concurrent change of the same user's roles
# waits for this one, then counts it).
PG_TRIGGER_FUNCTION = """
CREATE FUNCTION users_role_ids_from_links() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    changed bigint[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT array_agg(DISTINCT user_id) INTO changed FROM new_links;
    ELSIF TG_OP = 'DELETE' THEN
        SELECT array_agg(DISTINCT user_id) INTO changed FROM old_links;
    ELSE
        SELECT array_agg(DISTINCT user_id) INTO changed
        FROM (SELECT user_id FROM old_links UNION SELECT user_id FROM new_links) AS both_;
    END IF;
    PERFORM id FROM users WHERE id = ANY (changed) ORDER BY id FOR UPDATE;
    UPDATE users SET role_ids = user_role_ids(id)
    WHERE id = ANY (changed) AND role_ids IS DISTINCT FROM user_role_ids(id);
    RETURN NULL;
END
$$
"""
PG_TRIGGERS = (
    "CREATE TRIGGER user_roles_role_ids_insert AFTER INSERT ON user_roles "
    "REFERENCING NEW TABLE AS new_links FOR EACH STATEMENT "
    "EXECUTE FUNCTION users_role_ids_from_links()",
    "CREATE TRIGGER user_roles_role_ids_delete AFTER DELETE ON user_roles "
    "REFERENCING OLD TABLE AS old_links FOR EACH STATEMENT "
    "EXECUTE FUNCTION users_role_ids_from_links()",
    "CREATE TRIGGER user_roles_role_ids_update AFTER UPDATE ON user_roles "
    "REFERENCING OLD TABLE AS old_links NEW TABLE AS new_links FOR EACH STATEMENT "
    "EXECUTE FUNCTION users_role_ids_from_links()",
)


def _sqlite_role_ids(user_id: str) -> str:
    # json_group_array over the ids in order ('[]' when there are none).
    return (
        "(SELECT json_group_array(role_id) FROM (SELECT role_id FROM user_roles "
        f"WHERE user_id = {user_id} ORDER BY role_id))"
    )


# SQLite: a trigger for each row (one writer at a time: nothing to lock).
SQLITE_TRIGGERS = (
    "CREATE TRIGGER user_roles_role_ids_insert AFTER INSERT ON user_roles BEGIN "
    f"UPDATE users SET role_ids = {_sqlite_role_ids('NEW.user_id')} WHERE id = NEW.user_id; "
    "END",
    "CREATE TRIGGER user_roles_role_ids_delete AFTER DELETE ON user_roles BEGIN "
    f"UPDATE users SET role_ids = {_sqlite_role_ids('OLD.user_id')} WHERE id = OLD.user_id; "
    "END",
    "CREATE TRIGGER user_roles_role_ids_update AFTER UPDATE ON user_roles BEGIN "
    f"UPDATE users SET role_ids = {_sqlite_role_ids('OLD.user_id')} WHERE id = OLD.user_id; "
    f"UPDATE users SET role_ids = {_sqlite_role_ids('NEW.user_id')} WHERE id = NEW.user_id; "
    "END",
)
TRIGGER_NAMES = (
    "user_roles_role_ids_insert",
    "user_roles_role_ids_delete",
    "user_roles_role_ids_update",
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        op.add_column(
            "users",
            sa.Column("role_ids", sa.JSON(), nullable=False, server_default=sa.text("'[]'")),
        )
        op.execute(
            f"UPDATE users SET role_ids = {_sqlite_role_ids('users.id')} "
            "WHERE id IN (SELECT user_id FROM user_roles)"
        )
        for trigger in SQLITE_TRIGGERS:
            op.execute(trigger)
        return
    # Made again below, with the column.
    for name, _ in INDEXES:
        op.execute(f"DROP INDEX IF EXISTS {name}")
    op.execute(PG_ROLE_IDS)
    op.add_column(
        "users",
        sa.Column(
            "role_ids",
            postgresql.ARRAY(sa.BigInteger()),
            nullable=False,
            server_default=sa.text("'{}'"),
        ),
    )
    # Filled by rewriting the table (its indexes built again, each at once): an UPDATE of
    # every user writes a new version of each row and of its entries in every index, the
    # trigram index's some 40 a row (more than 10 minutes at a million users, a bloated
    # table after).
    op.execute("ALTER TABLE users ALTER COLUMN role_ids TYPE bigint[] USING user_role_ids(id)")
    op.execute(PG_TRIGGER_FUNCTION)
    for trigger in PG_TRIGGERS:
        op.execute(trigger)
    for name, columns in INDEXES:
        included = [c for c in FILTERED.split(", ") if c not in columns.split(", ")]
        held = ", ".join([*included, "role_ids"])
        if name == "ix_users_search_by_email":
            op.execute(
                f"ALTER TABLE users DROP CONSTRAINT {UNIQUE_EMAIL}, ADD CONSTRAINT "
                f"{UNIQUE_EMAIL} UNIQUE (organization_id, {columns}) INCLUDE ({held})"
            )
            continue
        op.execute(f"CREATE INDEX {name} ON users (organization_id, {columns}) INCLUDE ({held})")


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for name in TRIGGER_NAMES:
        op.execute(f"DROP TRIGGER IF EXISTS {name}" + (" ON user_roles" if postgres else ""))
    if postgres:
        op.execute("DROP FUNCTION IF EXISTS users_role_ids_from_links()")
        op.execute("DROP FUNCTION IF EXISTS user_role_ids(bigint)")
        for name, _ in INDEXES:
            op.execute(f"DROP INDEX IF EXISTS {name}")
        op.execute(
            f"ALTER TABLE users DROP CONSTRAINT {UNIQUE_EMAIL}, "
            f"ADD CONSTRAINT {UNIQUE_EMAIL} UNIQUE (organization_id, email_normalized)"
        )
    op.drop_column("users", "role_ids")
    if postgres:
        for name, columns in INDEXES:
            included = ", ".join(c for c in FILTERED.split(", ") if c not in columns.split(", "))
            op.execute(
                f"CREATE INDEX {name} ON users (organization_id, {columns}) INCLUDE ({included})"
            )
