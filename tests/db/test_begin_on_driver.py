"""On SQLite a transaction's BEGIN goes straight to the driver (db.engine.run_on_driver):
its errors still come as SQLAlchemy's, and a listener on the statements still sees it."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import OperationalError

from userdesk.db.engine import make_engine, run_on_driver


def test_a_transaction_begins_and_its_write_lock_is_taken(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'a.db'}")
    with engine.connect() as connection:
        connection.begin()
        assert connection.connection.driver_connection.in_transaction  # BEGIN ran
        connection.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        connection.commit()
    other = make_engine(f"sqlite:///{tmp_path / 'a.db'}")
    with engine.connect() as writing, other.connect() as waiting:
        writing.execution_options(userdesk_sqlite_begin="IMMEDIATE").begin()
        waiting.connection.driver_connection.execute("PRAGMA busy_timeout=0")  # no wait
        with pytest.raises(OperationalError, match="database is locked"):
            waiting.execution_options(userdesk_sqlite_begin="IMMEDIATE").begin()
    engine.dispose()
    other.dispose()


def test_a_driver_error_comes_as_sqlalchemys(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'a.db'}")
    with engine.connect() as connection:
        connection.begin()
        with pytest.raises(OperationalError, match="within a transaction"):
            run_on_driver(connection, "BEGIN")
    engine.dispose()


def test_a_listener_on_the_statements_sees_the_begin(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'a.db'}")
    seen: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: seen.append(args[2]))
    with engine.connect() as connection:
        connection.begin()
        connection.execute(text("SELECT 1"))
    assert seen[:2] == ["BEGIN", "SELECT 1"]
    engine.dispose()
