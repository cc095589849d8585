"""SQLite's search tables keep which users hold each term, not where (detail=none), and no
per-user term counts (columnsize=0)

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

# The search asks users_fts for single trigrams and users_words for single prefixes of one
# or two characters (userdesk.query.builder), each a term alone, never a phrase: positions
# and column sizes, which FTS5 keeps by default, were written for every user and never
# read. Without them a new user's terms cost half the CPU time (an import of 100,000 users
# spends a second less) and the tables take a third of the pages. A phrase query (two
# terms or more in quotes) is refused by such a table: the builder asks for none.
#
# The triggers that fill the tables are the one place that says what goes in them (every
# writer of users goes through them): unchanged, made again with the tables.
TABLES = {
    "users_fts": "tokenize='trigram'",
    "users_words": "tokenize='unicode61 remove_diacritics 0', prefix='1 2'",
}
WITHOUT_POSITIONS = "detail=none, columnsize=0"


def _triggers(table: str) -> list[str]:
    return [
        f"CREATE TRIGGER {table}_insert AFTER INSERT ON users BEGIN "
        f"INSERT INTO {table}(rowid, search_text) VALUES (new.id, new.search_text); END",
        f"CREATE TRIGGER {table}_delete AFTER DELETE ON users BEGIN "
        f"INSERT INTO {table}({table}, rowid, search_text) "
        f"VALUES ('delete', old.id, old.search_text); END",
        f"CREATE TRIGGER {table}_update AFTER UPDATE OF first_name, last_name, email "
        f"ON users BEGIN "
        f"INSERT INTO {table}({table}, rowid, search_text) "
        f"VALUES ('delete', old.id, old.search_text); "
        f"INSERT INTO {table}(rowid, search_text) VALUES (new.id, new.search_text); END",
    ]


def _remake(options: dict[str, str]) -> None:
    """Make each search table again with its OPTIONS, its triggers, and its terms read
    from the users table (`rebuild`)."""
    if op.get_bind().dialect.name != "sqlite":
        return  # PostgreSQL's GIN indexes keep no positions to drop
    for table, table_options in options.items():
        for event in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_{event}")
        op.execute(f"DROP TABLE IF EXISTS {table}")
        op.execute(
            f"CREATE VIRTUAL TABLE {table} USING fts5(search_text, content='users', "
            f"content_rowid='id', {table_options})"
        )
        for statement in _triggers(table):
            op.execute(statement)
        op.execute(f"INSERT INTO {table}({table}) VALUES ('rebuild')")


def upgrade() -> None:
    _remake({table: f"{options}, {WITHOUT_POSITIONS}" for table, options in TABLES.items()})


def downgrade() -> None:
    _remake(TABLES)
