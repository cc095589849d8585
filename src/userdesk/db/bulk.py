"""Inserting many rows at once, straight through the driver.

SQLAlchemy prepares every parameter of every row in Python, which is most of the time of
an import of 100,000 users. Here the values go to the driver as it takes them (timestamps
made SQL by `sql_time`), many rows per INSERT statement: one statement for many rows also
lets SQLite's full-text triggers flush their terms once per statement, not once per row.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from itertools import chain
from typing import Any

import orjson
from sqlalchemy import Connection

# SQLite takes up to 32,766 parameters a statement; longer statements are faster, to a point.
# A whole import batch (imports.BATCH, 5,000 rows) in one statement a table where the
# parameters allow: its users and invitations took 6 % less CPU time than in statements
# of 2,000 rows (100,000 rows, the two sizes interleaved batch by batch, twice).
PARAMETERS_PER_STATEMENT = 30_000
ROWS_PER_STATEMENT = 5_000


def sql_time(dialect: str) -> Callable[[datetime | None], Any]:
    """A timestamp as the dialect's driver stores it (UTC text on SQLite, as UTCDateTime)."""
    if dialect == "sqlite":
        return lambda t: None if t is None else t.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return lambda t: t


def json_text(value: Any) -> str:
    """A value for a JSON column, as both drivers take it."""
    return orjson.dumps(value).decode()


def _mark(conn: Connection) -> str:
    return "?" if conn.dialect.paramstyle == "qmark" else "%s"


def next_ids(conn: Connection, table: str, count: int) -> list[int]:
    """COUNT ids for rows about to be inserted into TABLE with them, so that nothing needs
    reading back. On SQLite those after the largest: a transaction that writes holds the
    only write lock from its start (unit_of_work begins IMMEDIATE), and one that does not
    could not insert anyway once another writer had committed. On PostgreSQL they come
    from the table's sequence."""
    if conn.dialect.name == "sqlite":
        largest = f"SELECT coalesce(max(id), 0) + 1 FROM {table}"  # noqa: S608 - from code
        start = conn.exec_driver_sql(largest).scalar_one()
        return list(range(start, start + count))
    sequence = f"SELECT nextval(pg_get_serial_sequence('{table}', 'id')) "
    return list(conn.exec_driver_sql(sequence + "FROM generate_series(1, %s)", (count,)).scalars())


def select_in(
    conn: Connection, sql: str, values: Sequence[Any], params: Sequence[Any] = ()
) -> list[Any]:
    """The rows of SQL, a SELECT whose last condition is `IN ({values})` and whose other
    parameters, PARAMS, are marked `{mark}`, for thousands of VALUES (SQLAlchemy's
    expanding IN names each of them, which takes longer than the query)."""
    if not values:
        return []
    mark = _mark(conn)
    statement = sql.format(mark=mark, values=", ".join([mark] * len(values)))
    return list(conn.exec_driver_sql(statement, (*params, *values)))


def insert_rows(
    conn: Connection,
    table: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    same: Mapping[str, Any] | None = None,
    skip_taken: bool = False,
) -> None:
    """Insert ROWS (values in the order of COLUMNS) into TABLE, with the columns of SAME
    set to the same value in every row; with SKIP_TAKEN, leaving out the rows a unique key
    refuses (ON CONFLICT DO NOTHING: another transaction's, once it committed).

    On SQLite SAME's values are passed once a statement (`INSERT ... SELECT` over a VALUES
    list of the rest): the audit events of an import, most of whose columns are alike,
    go in at twice the speed. PostgreSQL would type the VALUES list's columns from their
    values, a column of NULLs as text, so there each row carries them.

    Nothing is returned: RETURNING makes SQLite's inserts a third slower; the caller who
    needs the new ids reads them back by a unique key, in one statement.
    """
    same = dict(same or {})
    if same and conn.dialect.name != "sqlite":
        fixed = tuple(same.values())
        columns, rows, same = (*same, *columns), [(*fixed, *row) for row in rows], {}
    mark = _mark(conn)
    row_marks = f"({', '.join([mark] * len(columns))})"
    head = f"INSERT INTO {table} ({', '.join([*same, *columns])}) "
    if same:  # a VALUES list's columns are column1, column2, ... to its SELECT
        chosen = [mark] * len(same) + [f"column{n + 1}" for n in range(len(columns))]
        head, tail = f"{head}SELECT {', '.join(chosen)} FROM (VALUES ", ")"  # noqa: S608
    else:
        head, tail = f"{head}VALUES ", ""
    if skip_taken:  # SQLite reads "ON" after a SELECT's FROM as a join's unless WHERE ends it
        tail += " WHERE true ON CONFLICT DO NOTHING" if same else " ON CONFLICT DO NOTHING"
    per_statement = min(ROWS_PER_STATEMENT, PARAMETERS_PER_STATEMENT // len(columns))
    for start in range(0, len(rows), per_statement):
        chunk = rows[start : start + per_statement]
        sql = head + ", ".join([row_marks] * len(chunk)) + tail
        conn.exec_driver_sql(sql, (*same.values(), *chain.from_iterable(chunk)))


def update_rows(
    conn: Connection,
    table: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    same: Mapping[str, Any] | None = None,
) -> None:
    """Set COLUMNS of the rows of TABLE whose id leads each of ROWS (then the new values in
    the order of COLUMNS), and the columns of SAME to the same value in all of them: an
    UPDATE joined to a VALUES list, many rows a statement (a third of the time of one
    UPDATE run per row on SQLite)."""
    mark = _mark(conn)
    assignments = [f"{column} = v.column{n + 2}" for n, column in enumerate(columns)]
    assignments += [f"{column} = {mark}" for column in same or {}]
    row_marks = f"({', '.join([mark] * (len(columns) + 1))})"
    per_statement = min(ROWS_PER_STATEMENT, PARAMETERS_PER_STATEMENT // (len(columns) + 1))
    for start in range(0, len(rows), per_statement):
        chunk = rows[start : start + per_statement]
        sql = (
            f"UPDATE {table} SET {', '.join(assignments)} "  # noqa: S608 - names from code
            f"FROM (VALUES {', '.join([row_marks] * len(chunk))}) AS v "
            f"WHERE {table}.id = v.column1"
        )
        conn.exec_driver_sql(sql, (*(same or {}).values(), *chain.from_iterable(chunk)))
