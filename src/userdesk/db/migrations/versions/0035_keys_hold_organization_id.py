"""Every key holds organization_id on PostgreSQL: the schema Citus can distribute by it

Citus distributes a table by one column (here organization_id, the tenant) and enforces a
primary key, a unique constraint or a foreign key between two distributed tables only
when it holds that column: each is then checked on one shard. So on PostgreSQL:

- each table's primary key gets organization_id (`(id, organization_id)`: lookups by id
  alone still lead with id); no unique index on id alone is kept, since Citus refuses one;
- each unique constraint without it gets it at its end (`(token_hash, organization_id)`:
  a lookup by the hash alone still seeks);
- each foreign key between two such tables becomes `(col, organization_id) -> (id,
  organization_id)`, with the same ON DELETE; a SET NULL names its column
  (`SET NULL (col)`, PostgreSQL 15), so that deleting the row referred to nulls the
  reference, never the referring row's organization_id. A reference now stays within
  its organization, which the services always kept (a row that does not fails the
  migration: each new foreign key is checked on every row).

The reference tables stay as they are: `organizations`, and `throttle_hits`, whose rows
of an IP or a typed email belong to no organization; so do foreign keys to them. SQLite
keeps its keys: its `INTEGER PRIMARY KEY` is the rowid, and nothing distributes it. The models
declare both shapes (db.base.distribute_keys); docs/scaling.md says why, and
tests/db/test_citus_ready.py holds every table to these rules.

Revision ID: 0035
Revises: 0034
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0035"
down_revision = "0034"
branch_labels = None
depends_on = None

# Each table's primary key before this migration (organization_id is added to it).
PRIMARY_KEYS = {
    "activity_events": ("id",),
    "api_keys": ("id",),
    "audit_events": ("id",),
    "churn_run_levels": ("id",),
    "churn_runs": ("id",),
    "churn_scores": ("id",),
    "email_templates": ("id",),
    "groups": ("id",),
    "impersonations": ("id",),
    "import_files": ("job_id",),
    "invitations": ("id",),
    "job_items": ("job_id", "number"),
    "jobs": ("id",),
    "outbox": ("id",),
    "outreach_assignments": ("id",),
    "recovery_codes": ("id",),
    "role_permissions": ("role_id", "permission"),
    "roles": ("id",),
    "scim_requests": ("id",),
    "scim_tokens": ("id",),
    "segments": ("id",),
    "sessions": ("id",),
    "teams": ("id",),
    "two_step_factors": ("id",),
    "user_field_values": ("id",),
    "user_fields": ("id",),
    "user_groups": ("user_id", "group_id"),
    "user_roles": ("user_id", "role_id"),
    "user_status_days": ("id",),
    "user_tokens": ("id",),
    "users": ("id",),
    "webhook_attempts": ("id",),
    "webhook_endpoints": ("id",),
    "webhook_messages": ("id",),
}

# Unique constraints without organization_id: (table, column).
UNIQUES = (
    ("api_keys", "key_hash"),
    ("impersonations", "token_hash"),
    ("invitations", "token_hash"),
    ("scim_tokens", "token_hash"),
    ("sessions", "token_hash"),
    ("two_step_factors", "user_id"),
    ("user_tokens", "token_hash"),
    ("webhook_messages", "uid"),
)

# Foreign keys between distributed tables: (table, column, referred table, ON DELETE).
FOREIGN_KEYS = (
    ("activity_events", "user_id", "users", "CASCADE"),
    ("api_keys", "created_by_id", "users", "SET NULL"),
    ("api_keys", "role_id", "roles", "CASCADE"),
    ("api_keys", "team_id", "teams", "CASCADE"),
    ("audit_events", "actor_api_key_id", "api_keys", "SET NULL"),
    ("audit_events", "actor_user_id", "users", "SET NULL"),
    ("audit_events", "impersonator_id", "users", "SET NULL"),
    ("churn_run_levels", "run_id", "churn_runs", "CASCADE"),
    ("churn_scores", "run_id", "churn_runs", "CASCADE"),
    ("churn_scores", "user_id", "users", "CASCADE"),
    ("impersonations", "admin_id", "users", "CASCADE"),
    ("impersonations", "user_id", "users", "CASCADE"),
    ("import_files", "job_id", "jobs", "CASCADE"),
    ("invitations", "invited_by_id", "users", "SET NULL"),
    ("invitations", "user_id", "users", "CASCADE"),
    ("job_items", "job_id", "jobs", "CASCADE"),
    ("jobs", "created_by_id", "users", "SET NULL"),
    ("outreach_assignments", "agent_id", "users", "CASCADE"),
    ("outreach_assignments", "assigned_by_id", "users", "SET NULL"),
    ("outreach_assignments", "user_id", "users", "CASCADE"),
    ("recovery_codes", "user_id", "users", "CASCADE"),
    ("role_permissions", "role_id", "roles", "CASCADE"),
    ("scim_requests", "token_id", "scim_tokens", "SET NULL"),
    ("scim_tokens", "created_by_id", "users", "SET NULL"),
    ("segments", "owner_id", "users", "CASCADE"),
    ("sessions", "impersonation_id", "impersonations", "CASCADE"),
    ("sessions", "user_id", "users", "CASCADE"),
    ("two_step_factors", "user_id", "users", "CASCADE"),
    ("user_field_values", "field_id", "user_fields", "CASCADE"),
    ("user_field_values", "user_id", "users", "CASCADE"),
    ("user_groups", "group_id", "groups", "CASCADE"),
    ("user_groups", "user_id", "users", "CASCADE"),
    ("user_roles", "role_id", "roles", "CASCADE"),
    ("user_roles", "user_id", "users", "CASCADE"),
    ("user_tokens", "user_id", "users", "CASCADE"),
    ("users", "status_changed_by_id", "users", "SET NULL"),
    ("users", "team_id", "teams", "SET NULL"),
    ("webhook_attempts", "endpoint_id", "webhook_endpoints", "CASCADE"),
    ("webhook_attempts", "message_id", "webhook_messages", "CASCADE"),
    ("webhook_endpoints", "created_by_id", "users", "SET NULL"),
    ("webhook_messages", "endpoint_id", "webhook_endpoints", "CASCADE"),
)

ORG = "organization_id"


def _fk_name(table: str, column: str, referred: str) -> str:
    # The name the foreign key had, kept (the models' naming convention, db.base).
    return f"fk_{table}_{column}_{referred}"


def _uq_name(table: str, column: str, *, with_org: bool) -> str:
    return f"uq_{table}_{column}_{ORG}" if with_org else f"uq_{table}_{column}"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    # The foreign keys go first: each needs the key it refers to, which changes.
    for table, column, referred, _ in FOREIGN_KEYS:
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT {_fk_name(table, column, referred)}")
    for table, columns in PRIMARY_KEYS.items():
        keyed = ", ".join((*columns, ORG))
        op.execute(
            f"ALTER TABLE {table} DROP CONSTRAINT pk_{table}, "
            f"ADD CONSTRAINT pk_{table} PRIMARY KEY ({keyed})"
        )
    for table, column in UNIQUES:
        op.execute(
            f"ALTER TABLE {table} DROP CONSTRAINT {_uq_name(table, column, with_org=False)}, "
            f"ADD CONSTRAINT {_uq_name(table, column, with_org=True)} UNIQUE ({column}, {ORG})"
        )
    for table, column, referred, ondelete in FOREIGN_KEYS:
        action = f"SET NULL ({column})" if ondelete == "SET NULL" else ondelete
        op.execute(
            f"ALTER TABLE {table} ADD CONSTRAINT {_fk_name(table, column, referred)} "
            f"FOREIGN KEY ({column}, {ORG}) REFERENCES {referred} (id, {ORG}) "
            f"ON DELETE {action}"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column, referred, _ in FOREIGN_KEYS:
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT {_fk_name(table, column, referred)}")
    for table, column in UNIQUES:
        op.execute(
            f"ALTER TABLE {table} DROP CONSTRAINT {_uq_name(table, column, with_org=True)}, "
            f"ADD CONSTRAINT {_uq_name(table, column, with_org=False)} UNIQUE ({column})"
        )
    for table, columns in PRIMARY_KEYS.items():
        op.execute(
            f"ALTER TABLE {table} DROP CONSTRAINT pk_{table}, "
            f"ADD CONSTRAINT pk_{table} PRIMARY KEY ({', '.join(columns)})"
        )
    for table, column, referred, ondelete in FOREIGN_KEYS:
        op.execute(
            f"ALTER TABLE {table} ADD CONSTRAINT {_fk_name(table, column, referred)} "
            f"FOREIGN KEY ({column}) REFERENCES {referred} (id) ON DELETE {ondelete}"
        )
