"""Key-set (seek) paging: opaque cursors that hold the sort key of the last row shown.

A page never uses OFFSET: it asks for the rows after the last one shown, in the order of
an index, so page 10,000 costs what page 1 costs and rows inserted meanwhile neither
repeat nor vanish. A sort key whose first column may be NULL pages through two segments,
NULLs counting as the smallest value: first the NULL rows then the others when ascending,
the reverse when descending.
"""

from __future__ import annotations

import base64
import binascii
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Integer,
    Select,
    bindparam,
    literal,
    literal_column,
    select,
    tuple_,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.sql.util import ClauseAdapter

from userdesk.db.engine import Interrupted, sqlite_stopped_at, unindexed
from userdesk.db.prepared import Prepared
from userdesk.errors import InvalidInput
from userdesk.validation import MAX_ID, text_problem


@dataclass(frozen=True)
class SortKey:
    """An ordering of rows that ends in a unique column, so that every row has one place."""

    name: str
    columns: Sequence[Any]  # ORM attributes; together unique
    descending: bool = False
    nullable: bool = False  # the first column may be NULL

    def _order(self, columns: Sequence[Any]) -> list[Any]:
        return [c.desc() if self.descending else c.asc() for c in columns]

    def _after(self, columns: Sequence[Any], values: Sequence[Any]) -> ColumnElement[bool]:
        key = tuple_(*columns)
        bound = tuple_(
            *(
                v if isinstance(v, BindParameter) else literal(v, c.type)
                for c, v in zip(columns, values, strict=True)
            )
        )
        return key < bound if self.descending else key > bound

    def order_all(self, term: Callable[[Any], Any] = lambda column: column) -> list[Any]:
        """The ORDER BY of the whole list in one statement, NULLs where the pages put them;
        TERM wraps each column (to keep an index from being used for the order, say)."""
        columns = [term(c) for c in self.columns]
        if not self.nullable:
            return self._order(columns)
        nulls_first = self.columns[0].is_(None).desc()  # true sorts after false
        nulls_last = self.columns[0].is_(None).asc()
        return [nulls_last if self.descending else nulls_first, *self._order(columns)]

    def segments(
        self, values: Sequence[Any] | None, term: Callable[[Any], Any] = lambda column: column
    ) -> list[tuple[list[Any], list[Any]]]:
        """The (where, order by) of each query that continues the list after VALUES; TERM
        wraps each column (as in order_all)."""
        columns = [term(c) for c in self.columns]
        if not self.nullable:
            where = [self._after(columns, values)] if values is not None else []
            return [(where, self._order(columns))]
        first, rest = columns[0], columns[1:]
        null_part = ([first.is_(None)], self._order(rest))
        value_part = ([first.is_not(None)], self._order(columns))
        parts = [value_part, null_part] if self.descending else [null_part, value_part]
        if values is None:
            return parts
        if values[0] is None:  # inside the NULL segment
            where = [first.is_(None), self._after(rest, values[1:])]
            return [(where, null_part[1])] + ([value_part] if not self.descending else [])
        where = [self._after(columns, values)]
        return [(where, value_part[1])] + ([null_part] if self.descending else [])


class RanLong(Exception):
    """A page's statements ran past the time they were given (see fetch_page_within)."""


Rows = Sequence[Sequence[Any]]


def fetch_page_within(
    db: Session,
    columns: Sequence[Any],
    where: Sequence[ColumnElement[bool]],
    key: SortKey,
    *,
    cursor: str | None,
    limit: int,
    seconds: float,
) -> tuple[Rows, str | None]:
    """fetch_page, stopped with RanLong when its statements take longer than SECONDS.

    SQLite: a progress handler interrupts the statement, a read, and the transaction goes
    on. PostgreSQL: statement_timeout, set in a savepoint that is rolled back after (which
    undoes the settings, and a cancelled statement's error). No parallel workers there: a
    read in sort order stops after a page, sooner than workers start on a loaded machine
    ("role:Agent" by name: 9 ms alone, 30 with two workers, past its time under load); nor
    JIT, whose compiling (20 ms and more) statement_timeout does not interrupt.
    """
    connection = db.connection()
    if connection.dialect.name == "postgresql":
        ms = max(1, math.ceil(seconds * 1000))
        try:
            # The timeout set last, the savepoint there already: on a loaded machine the
            # rest of this very batch can outlast the timeout, a cancel like any other.
            connection.exec_driver_sql(
                f"SAVEPOINT {_SAVEPOINT}; SET LOCAL max_parallel_workers_per_gather = 0; "
                f"SET LOCAL jit = off; SET LOCAL statement_timeout = {ms}"
            )
            return fetch_page(db, columns, where, key, cursor=cursor, limit=limit)
        except DBAPIError as error:
            if getattr(error.orig, "sqlstate", None) == _QUERY_CANCELED:
                raise RanLong from None
            raise
        finally:
            connection.exec_driver_sql(
                f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}; RELEASE SAVEPOINT {_SAVEPOINT}"
            )
    if connection.dialect.name != "sqlite":
        return fetch_page(db, columns, where, key, cursor=cursor, limit=limit)
    try:
        with sqlite_stopped_at(connection, time.monotonic() + seconds):
            return fetch_page(db, columns, where, key, cursor=cursor, limit=limit)
    except Interrupted:
        raise RanLong from None


def fetch_page(
    db: Session,
    columns: Sequence[Any],
    where: Sequence[ColumnElement[bool]],
    key: SortKey,
    *,
    cursor: str | None,
    limit: int,
    few: bool = False,
) -> tuple[Rows, str | None]:
    """Up to LIMIT rows of COLUMNS (which include KEY's) of the rows WHERE selects, after
    CURSOR in KEY's order, and the cursor for the next. Each row holds its values in the
    order of COLUMNS, as SQLAlchemy reads them.

    FEW says that WHERE finds few rows through an index of its own: on SQLite they are
    then sorted, rather than sought along the sort's index (which the query planner,
    knowing no better, may prefer, and then read most of the table to fill a page).

    Each statement is compiled once per shape (see Prepared); only its values change.
    """
    values = decode_cursor(key, cursor) if cursor else None
    connection = db.connection()
    dialect = connection.dialect
    unindex = few and dialect.name in ("sqlite", "postgresql")
    by_ids = dialect.name == "postgresql" and not few
    where_keys = [w._generate_cache_key() for w in where]
    if any(k is None for k in where_keys):
        page = None
    else:
        shape = (
            dialect.name,
            tuple(columns),
            tuple(k.key for k in where_keys if k is not None),
            key.name,
            key.nullable,  # a nullable sort read without its NULLs (paged by one segment)
            unindex,
            by_ids,
            None if values is None else values[0] is None,
        )
        page = _PAGES.get(shape)
        if page is None and shape not in _PAGES:
            page = _PAGES.put(
                shape, _PreparedPage.build(dialect, columns, where, key, values, unindex, by_ids)
            )
    rows: list[Sequence[Any]] = []
    if page is None:  # a shape that cannot be prepared: SQLAlchemy compiles it each time
        term = _unindexed(dialect) if unindex else _as_is
        for segment_where, order_by in key.segments(values, term):
            wanted = limit + 1 - len(rows)
            statement = _statement(key, columns, [*where, *segment_where], order_by, wanted, by_ids)
            rows.extend(connection.execute(statement).all())
            if len(rows) > limit:
                break
        positions: Sequence[int] = [_position(columns, c) for c in key.columns]
    else:
        extracted = [b for k in where_keys if k is not None for b in k.bindparams]
        named = {_WANTED: 0}
        if values is not None:
            named.update((_after(i), v) for i, v in enumerate(values))
        for segment in page.segments:
            named[_WANTED] = limit + 1 - len(rows)
            rows.extend(segment.rows(connection, extracted, named))
            if len(rows) > limit:
                break
        positions = page.positions
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    last = rows[-1]
    return rows, encode_cursor(key, [last[i] for i in positions])


def merge_pages(
    columns: Sequence[Any],
    key: SortKey,
    pages: Sequence[tuple[Rows, str | None]],
    *,
    limit: int,
) -> tuple[Rows, str | None]:
    """One page (LIMIT rows of COLUMNS, and the cursor for the next) of the union of PAGES:
    pages of disjoint sets of rows, each of LIMIT rows at most after the same cursor, in
    KEY's order (fetch_page's). Merged in Python as the database orders them: NULL the
    smallest value; text by code point, which is the order of SQLite's BINARY collation
    over UTF-8."""
    positions = [_position(columns, c) for c in key.columns]

    def order(row: Sequence[Any]) -> tuple[tuple[bool, Any], ...]:
        return tuple((row[i] is not None, row[i]) for i in positions)

    rows = sorted((row for found, _ in pages for row in found), key=order, reverse=key.descending)
    more = len(rows) > limit or any(next_cursor is not None for _, next_cursor in pages)
    rows = rows[:limit]
    if not more or not rows:
        return rows, None
    return rows, encode_cursor(key, [rows[-1][i] for i in positions])


def _as_is(column: Any) -> Any:
    return column


def _unindexed(dialect: Dialect) -> Callable[[Any], Any]:
    """How a sort column is wrapped so that no index gives the order (the rows are then
    found by the conditions' best index and sorted): SQLite's unary +; on PostgreSQL the
    same value through an operator (text || '', number + 0, time + interval 0)."""
    return unindexed if dialect.name == "sqlite" else pg_unindexed


def pg_unindexed(column: Any) -> Any:
    """COLUMN (a sort column: text, a time or a number) as the same value through an
    operator: PostgreSQL then uses no index for an order by or a condition on it."""
    python_type = column.type.python_type
    if python_type is str:
        return column.op("||", return_type=column.type)(literal_column("''"))
    if python_type is datetime:
        return column.op("+", return_type=column.type)(literal_column("INTERVAL '0'"))
    return column.op("+", return_type=column.type)(literal_column("0"))


def _statement(
    key: SortKey,
    columns: Sequence[Any],
    where: Sequence[ColumnElement[bool]],
    order_by: Sequence[Any],
    limit: int | BindParameter[Any],
    by_ids: bool,
) -> Select[Any]:
    """The statement of one segment of a page: COLUMNS of the first LIMIT rows WHERE
    selects in ORDER_BY's order (KEY's).

    BY_IDS: the rows' ids first (a statement of their own, inside), then the rows. The
    ids' statement reads no column but the conditions' and the order's, which an index
    may hold all of: PostgreSQL then reads that index alone, and no row that the
    conditions leave out (a row read costs a page of the table, often not in memory);
    the rows are read for the page's ids only.
    """
    if not by_ids:
        return select(*columns).where(*where).order_by(*order_by).limit(limit)
    table = _expression(key.columns[0]).table
    [row_id] = table.primary_key.columns
    ids = select(row_id).where(*where).order_by(*order_by).limit(limit)
    adapt = ClauseAdapter(table.alias("page_row")).traverse
    return (
        select(*(adapt(_expression(c)) for c in columns))
        .where(adapt(row_id).in_(ids))
        .order_by(*(adapt(_expression(o)) for o in order_by))
    )


def _expression(column: Any) -> Any:
    """COLUMN (an ORM attribute or a SQL expression) as a SQL expression."""
    clause = getattr(column, "__clause_element__", None)
    return column if clause is None else clause()


def _position(columns: Sequence[Any], column: Any) -> int:
    return next(i for i, c in enumerate(columns) if c is column)


_WANTED = "page_wanted"
_SAVEPOINT = "page_within"
_QUERY_CANCELED = "57014"  # PostgreSQL's SQLSTATE for a statement_timeout


def _after(index: int) -> str:
    return f"page_after_{index}"


@dataclass(frozen=True)
class _PreparedPage:
    """The statements of one shape of page (sort, conditions, where the cursor lies)."""

    segments: tuple[Prepared, ...]
    positions: tuple[int, ...]  # of the sort key's columns among the page's

    @classmethod
    def build(
        cls,
        dialect: Dialect,
        columns: Sequence[Any],
        where: Sequence[ColumnElement[bool]],
        key: SortKey,
        values: Sequence[Any] | None,
        unindex: bool,
        by_ids: bool,
    ) -> _PreparedPage | None:
        after: list[Any] | None = None
        if values is not None:
            after = [
                None if i == 0 and v is None else bindparam(_after(i), type_=c.type)
                for i, (c, v) in enumerate(zip(key.columns, values, strict=True))
            ]
        extracted = [b for w in where if (k := w._generate_cache_key()) for b in k.bindparams]
        named = [_WANTED, *(_after(i) for i in range(len(key.columns)))]
        segments = []
        for segment_where, order_by in key.segments(
            after, _unindexed(dialect) if unindex else _as_is
        ):
            wanted = bindparam(_WANTED, type_=Integer)
            statement = _statement(key, columns, [*where, *segment_where], order_by, wanted, by_ids)
            prepared = Prepared.build(dialect, statement, extracted, named)
            if prepared is None:
                return None
            segments.append(prepared)
        return cls(tuple(segments), tuple(_position(columns, c) for c in key.columns))


class _Shapes:
    """Prepared pages (None: a shape that cannot be) by shape; past MOST, the first kept
    is forgotten first."""

    def __init__(self, most: int) -> None:
        self.most = most
        self.found: OrderedDict[Any, _PreparedPage | None] = OrderedDict()
        self.lock = threading.Lock()

    def __contains__(self, shape: Any) -> bool:
        return shape in self.found

    def get(self, shape: Any) -> _PreparedPage | None:
        return self.found.get(shape)

    def put(self, shape: Any, page: _PreparedPage | None) -> _PreparedPage | None:
        with self.lock:
            self.found[shape] = page
            while len(self.found) > self.most:
                self.found.popitem(last=False)
        return page


_PAGES = _Shapes(512)


def encode_cursor(sort: SortKey, values: Sequence[Any]) -> str:
    payload = [sort.name, [v.isoformat() if isinstance(v, datetime) else v for v in values]]
    return base64.urlsafe_b64encode(orjson.dumps(payload)).decode().rstrip("=")


def decode_cursor(sort: SortKey, cursor: str) -> list[Any]:
    """The key values in CURSOR.

    Raises:
        InvalidInput: the cursor is malformed or was made for another sort.
    """
    problem = InvalidInput(
        f"Cursor '{cursor}' is not one this list gave out (or the sort has changed).",
        code="invalid_cursor",
        fields={"cursor": f"'{cursor}' is not a valid cursor for sort '{sort.name}'"},
    )
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        name, values = orjson.loads(raw)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise problem from exc
    if name != sort.name or not isinstance(values, list) or len(values) != len(sort.columns):
        raise problem
    decoded: list[Any] = []
    for index, (column, value) in enumerate(zip(sort.columns, values, strict=True)):
        if value is None and index == 0 and sort.nullable:
            decoded.append(None)
            continue
        python_type = column.type.python_type
        try:
            if python_type is datetime and isinstance(value, str):
                value = datetime.fromisoformat(value)
            elif not isinstance(value, python_type):
                raise TypeError(value)
            if isinstance(value, int) and not -MAX_ID - 1 <= value <= MAX_ID:
                raise ValueError(value)  # beyond the databases' 64-bit integers
            if isinstance(value, str) and text_problem(value):
                raise ValueError(value)  # a NUL or a lone surrogate: no stored text has one
        except (TypeError, ValueError) as exc:
            raise problem from exc
        decoded.append(value)
    return decoded
