"""Statements compiled once: their SQL kept per shape, run with new values each time.

SQLAlchemy compiles a statement once too (its compiled cache), but finds it again by a
cache key generated from the whole statement at each run, and reads every row through
its result machinery: for the Users list that came to most of its time. A Prepared
statement is found by the caller's own key and reads rows as tuples.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BindParameter, Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, InvalidRequestError
from sqlalchemy.sql.selectable import GenerativeSelect

Processor = Callable[[Any], Any]


@dataclass(frozen=True)
class Prepared:
    """A SELECT compiled once for a dialect: its SQL, where each of its parameters comes
    from, and how each column is read (as SQLAlchemy's own execution would).

    A parameter is one of the statement's own conditions' (by its place among the bound
    values of their cache keys: a statement of the same shape puts its values there), one
    named at each run, or a constant the compiler made (SQLite's `OFFSET 0`). Run through
    `exec_driver_sql`: the statement events, the errors and the transaction are
    SQLAlchemy's; only compiling and the result's machinery are skipped.
    """

    sql: str
    positional: bool
    # (name, kind, source, bind processor): kind 0 extracted (source: index), 1 named
    # (source: name), 2 constant (source: the value)
    binds: tuple[tuple[str, int, Any, Processor | None], ...]
    # (index, processor) of each column whose values SQLAlchemy would convert
    converted: tuple[tuple[int, Processor], ...]

    @classmethod
    def build(
        cls,
        dialect: Dialect,
        statement: GenerativeSelect,
        extracted: Sequence[BindParameter[Any]],
        named: Sequence[str],
        *,
        fixed: bool = False,
    ) -> Prepared | None:
        """STATEMENT prepared, or None when it cannot be (its SQL depends on its values:
        an expanding IN, a value rendered inline; or a value of its own is neither among
        EXTRACTED nor NAMED, unless FIXED says that its own values never change)."""
        compiled: Any = statement.compile(dialect=dialect)
        full = statement._generate_cache_key()
        if (
            full is None
            or compiled.post_compile_params
            or compiled.literal_execute_params
            or compiled.escaped_bind_names
        ):
            return None
        from_statement = {id(b) for b in full.bindparams}
        place: dict[int, int] = {}
        for index, b in enumerate(extracted):
            place.setdefault(id(b), index)
        names = compiled.positiontup if compiled.positional else list(compiled.binds)
        binds: list[tuple[str, int, Any, Processor | None]] = []
        for name in names:
            bound = compiled.binds[name]
            process = bound.type.dialect_impl(dialect).bind_processor(dialect)
            if id(bound) in place:
                binds.append((name, 0, place[id(bound)], process))
            elif bound.key in named:
                binds.append((name, 1, bound.key, process))
            elif id(bound) in from_statement and not fixed:
                return None  # a value of the statement's that could not be placed
            else:
                binds.append((name, 2, bound.effective_value, process))
        processors = [_result_processor(dialect, c.type) for c in statement.selected_columns]
        converted = tuple((i, p) for i, p in enumerate(processors) if p is not None)
        return cls(compiled.string, compiled.positional, tuple(binds), converted)

    @classmethod
    def named(
        cls, dialect: Dialect, statement: GenerativeSelect, named: Sequence[str], *, fixed: bool
    ) -> Prepared:
        """STATEMENT, whose values are all NAMED (and, when FIXED, its own constants),
        prepared once for DIALECT: a statement that runs as it is on every request.

        Raises:
            AssertionError: its SQL depends on its values (an expanding IN, a value
                rendered inline), which no such statement has.
        """
        prepared = cls.build(dialect, statement, (), named, fixed=fixed)
        if prepared is None:  # pragma: no cover - a statement written so cannot be prepared
            raise AssertionError(f"cannot be prepared: {statement}")
        return prepared

    def rows(
        self,
        connection: Connection,
        extracted: Sequence[BindParameter[Any]],
        named: dict[str, Any],
    ) -> list[Sequence[Any]]:
        """The rows of the statement with EXTRACTED (the bound values of its conditions'
        cache keys, in order) and NAMED values."""
        values = []
        for _name, kind, source, process in self.binds:
            if kind == 0:
                value = extracted[source].effective_value
            elif kind == 1:
                value = named[source]
            else:
                value = source
            values.append(value if process is None else process(value))
        parameters: Any = (
            tuple(values)
            if self.positional
            else {b[0]: v for b, v in zip(self.binds, values, strict=True)}
        )
        raw = _fetch(connection, self.sql, parameters)
        if not self.converted:
            return raw
        converted = self.converted  # a page converts hundreds of values: locals, read once
        rows: list[Sequence[Any]] = []
        append = rows.append
        for raw_row in raw:
            row = list(raw_row)
            for index, process in converted:
                value = row[index]
                if value is not None:
                    row[index] = process(value)
            append(row)
        return rows


def _result_processor(dialect: Dialect, type_: Any) -> Processor | None:
    """How SQLAlchemy would convert a column of TYPE_, without the driver's type code of
    the column: where it needs that code (psycopg's Float: a float8 comes as a float and
    is kept, a numeric would be made one), the value as the driver gives it."""
    try:
        return type_.dialect_impl(dialect).result_processor(dialect, None)  # type: ignore[no-any-return]
    except (TypeError, InvalidRequestError):
        return None


def _fetch(connection: Connection, sql: str, parameters: Any) -> list[Sequence[Any]]:
    """The rows of SQL (the driver's tuples) on CONNECTION, in its transaction; an error
    as SQLAlchemy's (OperationalError ...), as every handler of ours expects.

    On the DBAPI cursor itself: SQLAlchemy's result object costs more than the statement
    for a page. Through `exec_driver_sql` when something listens to the connection's
    statements (a test reading their query plans), so that it sees these too.
    """
    events = connection.dispatch
    if events.before_cursor_execute or events.after_cursor_execute:
        result = connection.exec_driver_sql(sql, parameters)
        return list(result.fetchall())  # an error while fetching comes as SQLAlchemy's too
    dialect = connection.dialect
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql, parameters)
        return cursor.fetchall()  # type: ignore[no-any-return]
    except dialect.loaded_dbapi.Error as error:
        raise DBAPIError.instance(
            sql, parameters, error, dialect.loaded_dbapi.Error, dialect=dialect
        ) from error
    finally:
        cursor.close()
