"""Migration 0020 makes SQLite's search tables again without positions: the users there
before it are found as before, and the triggers keep the tables true to the users table
after it (added, renamed, deleted)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Connection, text

from userdesk.db.engine import make_engine
from userdesk.db.migrate import upgrade


def _ids(conn: Connection, table: str, match: str) -> list[int]:
    return list(
        conn.execute(
            text(f"SELECT rowid FROM {table} WHERE {table} MATCH :m ORDER BY rowid"),  # noqa: S608
            {"m": match},
        ).scalars()
    )


def _add(conn: Connection, user_id: int, first: str, last: str, email: str) -> None:
    conn.execute(
        text(
            "INSERT INTO users (id, organization_id, email, email_normalized, first_name, "
            "last_name, status, created_via, version, created_at, updated_at) VALUES "
            "(:id, 1, :email, lower(:email), :first, :last, 'active', 'admin', 1, "
            "'2026-01-01', '2026-01-01')"
        ),
        {"id": user_id, "email": email, "first": first, "last": last},
    )


def test_users_are_found_the_same_before_and_after_and_the_triggers_still_work(
    tmp_path: Path,
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/old.db")
    upgrade(engine, "0019")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO organizations (id, slug, name, settings, created_at) "
                "VALUES (1, 'o', 'O', '{}', '2026-01-01')"
            )
        )
        _add(conn, 1, "Ann", "Lee", "ann@example.com")
        _add(conn, 2, "Bob", "Annan", "bob@example.org")
        _add(conn, 3, "Cy", "Dee", "cy@example.com")
    searches = [
        ("users_fts", '"ann"'),
        ("users_fts", '"ann" AND "lee"'),
        ("users_fts", '".or"'),  # one trigram a term: the builder asks for no phrase
        ("users_words", '"a"*'),
        ("users_words", '"cy"*'),
    ]
    with engine.connect() as conn:
        before = [_ids(conn, table, match) for table, match in searches]
    upgrade(engine)
    with engine.begin() as conn:
        after = [_ids(conn, table, match) for table, match in searches]
        _add(conn, 4, "Dan", "Annex", "dan@example.net")
        conn.execute(text("UPDATE users SET first_name = 'Zed' WHERE id = 1"))
        conn.execute(text("DELETE FROM users WHERE id = 2"))
        later = (_ids(conn, "users_fts", '"ann"'), _ids(conn, "users_words", '"ze"*'))
        for table in ("users_fts", "users_words"):
            conn.execute(text(f"INSERT INTO {table}({table}) VALUES ('integrity-check')"))  # noqa: S608
        options = conn.execute(
            text("SELECT sql FROM sqlite_master WHERE name IN ('users_fts', 'users_words')")
        ).scalars()
        assert all("detail=none" in sql for sql in options)
    engine.dispose()
    assert before == [[1, 2], [1], [2], [1, 2], [3]]
    assert after == before
    # Ann renamed Zed keeps "ann" in her email; Bob Annan is gone; Dan Annex is new.
    assert later == ([1, 4], [1])
