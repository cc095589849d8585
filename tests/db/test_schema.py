from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, inspect

from userdesk.db.migrate import include_name, include_object_on
from userdesk.db.registry import metadata


def test_the_migrations_build_exactly_the_tables_the_models_describe(
    connection: Connection,
) -> None:
    """Keys declared for one database (db.base.distribute_keys: PostgreSQL's hold
    organization_id, SQLite's do not) are compared on that database alone: Alembic
    compares every key of the models, whichever database it is declared for."""
    context = MigrationContext.configure(
        connection,
        opts={
            "compare_type": True,
            "include_name": include_name,
            "include_object": include_object_on(connection.dialect.name),
        },
    )
    assert compare_metadata(context, metadata) == []


def test_every_table_but_organizations_carries_organization_id(connection: Connection) -> None:
    inspector = inspect(connection)
    for table in metadata.sorted_tables:
        if table.name == "organizations":
            continue
        columns = {c["name"] for c in inspector.get_columns(table.name)}
        assert "organization_id" in columns, table.name


def test_sqlite_runs_in_wal_mode_with_foreign_keys_on(connection: Connection) -> None:
    if connection.dialect.name != "sqlite":
        return
    assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
