"""Engines: SQLite in WAL mode with foreign keys on, or PostgreSQL through psycopg 3."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.sql.elements import UnaryExpression
from sqlalchemy.sql.operators import custom_op


def normalize_url(url: str) -> str:
    """Use psycopg 3 for a plain postgresql:// URL."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


_WORD = re.compile(r"[^\W_]+")


def contains(haystack: str | None, needle: str) -> bool:
    """NEEDLE (lower-case) is in HAYSTACK, ignoring case: what the trigram index finds."""
    return haystack is not None and needle in haystack.lower()


def word_prefix(haystack: str | None, prefix: str) -> bool:
    """A word of HAYSTACK starts with PREFIX (lower-case): what the prefix index finds."""
    return haystack is not None and any(
        word.startswith(prefix) for word in _WORD.findall(haystack.lower())
    )


def unindexed(column: Any) -> Any:
    """COLUMN behind SQLite's unary +: the same value, but no index is chosen for a
    condition on it or for an order by it (the query planner is steered by the rest)."""
    return UnaryExpression(column, operator=custom_op("+"), type_=column.type)


BEGIN_OPTION = "userdesk_sqlite_begin"
# Pages SQLite's write-ahead log may hold before a commit copies them into the database
# (wal_autocheckpoint): 1,000 by default, which every step of a long write passes (an
# import's writes 3,000 to 4,000, many of them the same index pages as the step before).
# Its steps let the log grow to LONG_WRITE_CHECKPOINT_PAGES (128 MB), and its last puts
# the default back, so that its commit copies the rest: 100,000 imported rows took a
# third less time committing.
CHECKPOINT_PAGES = 1_000
LONG_WRITE_CHECKPOINT_PAGES = 32_768


def log_grows(connection: Connection, grows: bool) -> None:
    """Whether the commits of CONNECTION (SQLite's) let the write-ahead log grow to
    LONG_WRITE_CHECKPOINT_PAGES, for a step of a long write, or copy it into the database
    past CHECKPOINT_PAGES, as by default (its last step, or one that failed)."""
    if connection.dialect.name != "sqlite":
        return
    pages = LONG_WRITE_CHECKPOINT_PAGES if grows else CHECKPOINT_PAGES
    connection.exec_driver_sql(f"PRAGMA wal_autocheckpoint={pages}")


# How long SQLite waits for a write lock held by another process before it answers
# "database is locked" (the request then answers 503 with Retry-After).
BUSY_TIMEOUT_MS = 5000
# SQLite's page cache per connection, in KiB; it also bounds what a sort keeps in memory.
CACHE_KIB = 65536
SORT_CACHE_KIB = 16384


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for URL, with the per-connection settings Userdesk relies on."""
    url = normalize_url(url)
    if url.startswith("sqlite"):
        return _sqlite_engine(url, **kwargs)
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


def _sqlite_engine(url: str, **kwargs: Any) -> Engine:
    parsed = make_url(url)
    if parsed.database and parsed.database != ":memory:":
        from pathlib import Path

        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"check_same_thread": False}, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide where transactions begin, so that
        # SAVEPOINT works (and with it tests rolled back at the end).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # First, so that the PRAGMAs below wait too when another process holds a lock.
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
        cursor.execute("PRAGMA threads=1")  # a large sort merges in a helper thread
        cursor.close()
        dbapi_connection.create_function("ud_contains", 2, contains, deterministic=True)
        dbapi_connection.create_function("ud_word_prefix", 2, word_prefix, deterministic=True)

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # A transaction that will write takes the write lock at once (BEGIN IMMEDIATE): one
        # that read first and wrote later would fail, not wait, if another writer committed
        # in between (SQLITE_BUSY_SNAPSHOT).
        mode = connection.get_execution_options().get(BEGIN_OPTION, "")
        run_on_driver(connection, f"BEGIN {mode}".strip())

    return engine


def run_on_driver(connection: Connection, sql: str) -> None:
    """Run SQL, a statement without parameters nor rows (BEGIN), on CONNECTION's driver
    connection: through `exec_driver_sql` costs a transaction 15 µs more than its
    BEGIN and COMMIT cost SQLite. Through it still when something listens to the
    connection's statements (a test counting them), so that it sees this one too; an
    error comes as SQLAlchemy's (OperationalError ...) either way."""
    events = connection.dispatch
    if events.before_cursor_execute or events.after_cursor_execute:
        connection.exec_driver_sql(sql)
        return
    dialect = connection.dialect
    try:
        connection.connection.driver_connection.execute(sql)  # type: ignore[union-attr]
    except dialect.loaded_dbapi.Error as error:
        raise DBAPIError.instance(
            sql, (), error, dialect.loaded_dbapi.Error, dialect=dialect
        ) from error


@contextmanager
def sorting_in_little_memory(connection: Connection) -> Iterator[None]:
    """On SQLite, CONNECTION's large sorts spill to temporary files early for the while
    (its cache, which bounds the sorter's memory, cut to SORT_CACHE_KIB)."""
    if connection.dialect.name != "sqlite":
        yield
        return
    connection.exec_driver_sql(f"PRAGMA cache_size=-{SORT_CACHE_KIB}")
    try:
        yield
    finally:
        connection.exec_driver_sql(f"PRAGMA cache_size=-{CACHE_KIB}")


class Interrupted(Exception):
    """A SQLite statement ran past its deadline and was stopped (see sqlite_stopped_at)."""


@contextmanager
def sqlite_stopped_at(connection: Connection, deadline: float) -> Iterator[None]:
    """SQLite statements run inside are interrupted with Interrupted once time.monotonic()
    passes DEADLINE: a progress handler on the connection stops the statement (a read),
    and the transaction goes on."""
    raw: Any = connection.connection.driver_connection
    raw.set_progress_handler(lambda: time.monotonic() > deadline, 1000)
    try:
        yield
    except OperationalError as error:
        if "interrupted" in str(error.orig):
            raise Interrupted from None
        raise
    finally:
        raw.set_progress_handler(None, 0)
