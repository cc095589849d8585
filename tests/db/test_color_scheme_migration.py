"""Migration 0027 gives every user a color scheme, "system" unless they choose light or
dark on /me; the database refuses any other value, and a downgrade takes the column away."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.exc import IntegrityError

from tests.conftest import POSTGRES_URL, postgres_schema
from userdesk.db.engine import make_engine
from userdesk.db.migrate import alembic_config, upgrade

T = "2026-01-01 00:00:00.000000"


INSERT_USER = (
    "INSERT INTO users (id, organization_id, email, email_normalized, first_name, last_name, "
    "status, created_via, version, created_at, updated_at) "
    "VALUES (:id, 1, :email, :email, '', '', 'active', 'admin', 1, :t, :t)"
)
INSERT_USER_WITH_SCHEME = (
    "INSERT INTO users (id, organization_id, email, email_normalized, first_name, last_name, "
    "status, created_via, version, created_at, updated_at, color_scheme) "
    "VALUES (:id, 1, :email, :email, '', '', 'active', 'admin', 1, :t, :t, :scheme)"
)


def _insert_user(conn: Connection, user_id: int, scheme: str | None = None) -> None:
    statement = INSERT_USER if scheme is None else INSERT_USER_WITH_SCHEME
    values = {"id": user_id, "email": f"u{user_id}@example.com", "t": T, "scheme": scheme}
    conn.execute(text(statement), values)


def _insert_organization(conn: Connection) -> None:
    conn.execute(
        text(
            "INSERT INTO organizations (id, slug, name, settings, created_at) "
            "VALUES (1, 'o', 'O', '{}', :t)"
        ),
        {"t": T},
    )


def _downgrade(conn: Connection, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = conn
    command.downgrade(config, revision)


@contextmanager
def _fresh(backend: str, tmp_path: Path) -> Iterator[Engine]:
    """An empty database on BACKEND (a schema of its own on PostgreSQL)."""
    if backend == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path}/scheme.db")
        yield engine
        engine.dispose()
        return
    assert POSTGRES_URL
    with postgres_schema("ud_scheme") as schema:
        options = {"options": f"-csearch_path={schema},public"}
        engine = make_engine(POSTGRES_URL, connect_args=options)
        try:
            yield engine
        finally:
            engine.dispose()


def test_existing_and_new_users_follow_the_system_and_only_three_values_are_kept(
    engine: Engine, tmp_path: Path
) -> None:
    """Run on each backend the suite runs on (the `engine` fixture's)."""
    with _fresh(engine.dialect.name, tmp_path) as fresh:
        upgrade(fresh, "0026")
        with fresh.begin() as conn:
            _insert_organization(conn)
            _insert_user(conn, 1)  # there before the column
        upgrade(fresh)
        with fresh.begin() as conn:
            _insert_user(conn, 2)  # made without saying
            _insert_user(conn, 3, "dark")
        with fresh.connect() as conn, pytest.raises(IntegrityError), conn.begin():
            _insert_user(conn, 4, "sepia")
        with fresh.connect() as conn, pytest.raises(IntegrityError), conn.begin():
            conn.execute(text("UPDATE users SET color_scheme = 'DARK' WHERE id = 1"))
        with fresh.connect() as conn:
            found = dict(conn.execute(text("SELECT id, color_scheme FROM users")).all())
        assert found == {1: "system", 2: "system", 3: "dark"}
        with fresh.begin() as conn:
            _downgrade(conn, "0026")
        with fresh.connect() as conn:
            columns = {c["name"] for c in inspect(conn).get_columns("users")}
            kept = conn.execute(text("SELECT count(*) FROM users")).scalar()
        assert "color_scheme" not in columns
        assert "email" in columns
        assert kept == 3
