"""On an analyzed SQLite database, a migration that adds an index to users gives it its
statistics. Without them SQLite takes a new index for a selective one and may read every
list through it: migration 0031's index on last_name, unanalyzed, made a page of users by
name walk the million rows and sort them (2.7 s instead of 2 ms)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Connection, text

from userdesk.db.engine import make_engine
from userdesk.db.migrate import upgrade

ANALYZED_AT = "0028"  # the database as the bench and the demo leave it, then migrated on
T = "2026-01-01 00:00:00.000000"


def test_every_index_on_users_made_since_has_statistics(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/analyzed.db")
    upgrade(engine, ANALYZED_AT)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO organizations (id, slug, name, settings, created_at) "
                "VALUES (1, 'o', 'O', '{}', :t)"
            ),
            {"t": T},
        )
        for user_id in range(1, 21):
            conn.execute(
                text(
                    "INSERT INTO users (id, organization_id, email, email_normalized, "
                    "first_name, last_name, status, created_via, version, created_at, "
                    "updated_at) VALUES (:id, 1, :email, :email, 'Ann', :last, 'active', "
                    "'admin', 1, :t, :t)"
                ),
                {"id": user_id, "email": f"u{user_id}@example.com", "last": f"L{user_id}", "t": T},
            )
        conn.exec_driver_sql("ANALYZE")
        before = _indexes(conn)
    upgrade(engine)
    with engine.connect() as conn:
        made_since = _indexes(conn) - before
        with_statistics = set(
            conn.exec_driver_sql("SELECT idx FROM sqlite_stat1 WHERE tbl = 'users'").scalars()
        )
    engine.dispose()
    assert "ix_users_search_last_name_lower" in made_since
    assert made_since - with_statistics == set()


def _indexes(conn: Connection) -> set[str]:
    return set(
        conn.exec_driver_sql(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'users'"
        ).scalars()
    )
