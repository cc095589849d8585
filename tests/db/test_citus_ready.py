"""The migrated PostgreSQL schema keeps Citus's rules (docs/scaling.md), so that it can be
distributed by organization_id as it stands.

Every table but the reference tables that docs/scaling.md names on its `Reference tables:`
line is distributed: it has organization_id NOT NULL, its primary key and every unique
constraint or index hold organization_id, and every foreign key to another distributed
table holds organization_id on both sides. A reference table has no foreign key to a
distributed one. A table added later without these fails here, named."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import Connection, text

from userdesk.db.base import REFERENCE_TABLES

SCALING = Path(__file__).resolve().parents[2] / "docs" / "scaling.md"
REFERENCE_LINE = re.compile(r"^Reference tables: (`\w+`(?:, `\w+`)*)\s*$", re.MULTILINE)
# Alembic's own bookkeeping: on Citus a table of the coordinator alone, nobody's data.
NOT_DATA = frozenset({"alembic_version"})
ORG = "organization_id"


def reference_tables() -> set[str]:
    """The tables named on docs/scaling.md's one `Reference tables:` line."""
    lines = REFERENCE_LINE.findall(SCALING.read_text(encoding="utf-8"))
    assert len(lines) == 1, f"{SCALING} must name the reference tables on one line"
    return set(re.findall(r"`(\w+)`", lines[0]))


def _tables(conn: Connection) -> dict[str, int]:
    """The schema's tables, by name: their oids."""
    rows = conn.execute(
        text(
            "SELECT c.relname, c.oid FROM pg_class c "
            "WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p')"
        )
    )
    return {str(name): int(oid) for name, oid in rows}


def broken_rules(conn: Connection, references: set[str]) -> list[str]:
    """What breaks Citus's rules in the schema of CONN, a sentence per table and rule."""
    tables = _tables(conn)
    distributed = {name for name in tables if name not in references | NOT_DATA}
    org_column: dict[str, int] = {}
    for name, attnum in conn.execute(
        text(
            "SELECT c.relname, a.attnum FROM pg_attribute a "
            "JOIN pg_class c ON c.oid = a.attrelid "
            "WHERE c.relnamespace = current_schema()::regnamespace AND a.attname = :org "
            "AND a.attnotnull AND NOT a.attisdropped"
        ),
        {"org": ORG},
    ):
        org_column[name] = attnum
    broken = [f"reference table {name} does not exist" for name in sorted(references - set(tables))]
    for name in sorted(distributed):
        if name not in org_column:
            broken.append(f"{name}: no {ORG} NOT NULL (or name it a reference table)")
    keyed = conn.execute(
        text(
            "SELECT t.relname, i.relname, x.indisprimary, x.indkey::int2[] "
            "FROM pg_index x JOIN pg_class t ON t.oid = x.indrelid "
            "JOIN pg_class i ON i.oid = x.indexrelid "
            "WHERE t.relnamespace = current_schema()::regnamespace AND x.indisunique"
        )
    ).all()
    primary = {table for table, _, is_primary, _ in keyed if is_primary}
    for name in sorted(distributed - primary):
        broken.append(f"{name}: no primary key")
    for table, index, is_primary, columns in sorted(keyed):
        if table in distributed and org_column.get(table) not in columns:
            kind = "primary key" if is_primary else "unique index"
            broken.append(f"{table}: {kind} {index} does not hold {ORG}")
    foreign = conn.execute(
        text(
            "SELECT t.relname, k.conname, r.relname, k.conkey::int2[], k.confkey::int2[] "
            "FROM pg_constraint k JOIN pg_class t ON t.oid = k.conrelid "
            "JOIN pg_class r ON r.oid = k.confrelid "
            "WHERE k.contype = 'f' AND t.relnamespace = current_schema()::regnamespace"
        )
    ).all()
    for table, key, referred, columns, referred_columns in sorted(foreign):
        if referred not in distributed:
            continue  # to a reference table: Citus takes it from a distributed table
        if table not in distributed:
            broken.append(f"{table}: reference table with foreign key {key} to {referred}")
            continue
        pairs = set(zip(columns, referred_columns, strict=True))
        if (org_column.get(table), org_column.get(referred)) not in pairs:
            broken.append(f"{table}: foreign key {key} to {referred} does not hold {ORG}")
    return broken


def test_the_reference_tables_of_the_docs_are_the_models(connection: Connection) -> None:
    """docs/scaling.md and db.base.REFERENCE_TABLES (the models' keys) name the same."""
    assert reference_tables() == set(REFERENCE_TABLES)


@pytest.mark.only_on("postgresql")  # SQLite keeps its rowid keys
def test_the_migrated_schema_keeps_the_rules_of_a_distributed_database(
    connection: Connection,
) -> None:
    broken = broken_rules(connection, reference_tables())
    assert not broken, "Citus's rules (docs/scaling.md) broken:\n" + "\n".join(broken)


@pytest.mark.only_on("postgresql")  # SQLite keeps its rowid keys
def test_a_table_added_without_organization_id_in_its_keys_is_named(
    connection: Connection,
) -> None:
    """The rules see a table they were not written for (rolled back with the test)."""
    connection.execute(
        text(
            "CREATE TABLE gadgets (id bigserial PRIMARY KEY, serial text UNIQUE, "
            "organization_id bigint NOT NULL REFERENCES organizations (id), "
            "user_id bigint, user_org bigint, "
            "CONSTRAINT fk_gadgets_user FOREIGN KEY (user_id, user_org) "
            "REFERENCES users (id, organization_id))"
        )
    )
    connection.execute(text("CREATE UNIQUE INDEX ix_users_email_only ON users (email_normalized)"))
    connection.execute(text("CREATE TABLE widgets (id bigserial PRIMARY KEY, name text)"))
    connection.execute(
        text("ALTER TABLE organizations ADD COLUMN gadget bigint REFERENCES gadgets (id)")
    )
    broken = broken_rules(connection, reference_tables())
    assert sorted(broken) == sorted(
        [
            f"widgets: no {ORG} NOT NULL (or name it a reference table)",
            f"gadgets: primary key gadgets_pkey does not hold {ORG}",
            f"gadgets: unique index gadgets_serial_key does not hold {ORG}",
            f"gadgets: foreign key fk_gadgets_user to users does not hold {ORG}",
            f"users: unique index ix_users_email_only does not hold {ORG}",
            f"widgets: primary key widgets_pkey does not hold {ORG}",
            "organizations: reference table with foreign key organizations_gadget_fkey to gadgets",
        ]
    )
