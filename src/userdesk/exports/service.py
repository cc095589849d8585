"""CSV export of exactly the users a query and a sort show, streamed.

The same conditions and sort as the Users list (users.matching, users.sort_key), in one
statement read a batch at a time. The database does what differs on every row (defusing
names and emails, formatting timestamps to the second in UTC, yes/no, aggregating group
and role ids); Python turns the few combinations of ids into names once each.

On SQLite the order is made by sorting, never by walking a sort index: walking the name
index of a million users fetches each row from a different page of the table (7 s), while
reading the table in its own order and sorting (with temporary files, so that memory
stays flat) takes half that. The read transaction lasts as long as the download; in WAL
mode (and on PostgreSQL) it blocks no writer.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import cache
from typing import Any

import orjson
from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    String,
    case,
    cast,
    func,
    literal,
    literal_column,
    select,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import UnaryExpression
from sqlalchemy.sql.operators import custom_op

from userdesk.access import service as access
from userdesk.access.models import Group, Role, Team
from userdesk.access.rules import Actor, Permission
from userdesk.db.base import utcnow
from userdesk.db.engine import sorting_in_little_memory
from userdesk.db.paging import pg_unindexed
from userdesk.db.session import Database
from userdesk.query import builder
from userdesk.segments import columns as custom_columns
from userdesk.users import service as users
from userdesk.users.field_rules import FieldSpec
from userdesk.users.models import User, UserGroup, UserRole

HEADER = (
    "first_name",
    "last_name",
    "email",
    "status",
    "email_verified",
    "validated",
    "team",
    "groups",
    "roles",
    "permissions",
    "created_at",
    "last_login_at",
    "last_seen_at",
    "churn",
    "churn_probability",
)
BATCH = 1000
RISKY = ("=", "+", "-", "@", "\t", "\r")


def defuse(cell: str) -> str:
    """A cell a spreadsheet would run as a formula, made plain text with a leading '."""
    return "'" + cell if cell.startswith(RISKY) else cell


def check(
    database: Database,
    *,
    actor: Actor,
    q: str,
    sort: str,
    columns: Sequence[str] | None = None,
) -> list[FieldSpec]:
    """Refuse now, before the first byte, what the export would refuse; the custom
    fields COLUMNS names (their keys; None: every field the actor sees, as the CLI
    exports), to write after the built-in columns.

    Raises:
        PermissionDenied: the actor may not export users.
        InvalidInput: a bad query or sort, or a column that is no field the actor sees.
    """
    access.require(actor, Permission.USERS_EXPORT)
    users.sort_key(sort)
    with database.sessions() as db:
        builder.conditions(
            db,
            organization_id=actor.organization_id,
            query=builder.parse_query(q),
            now=utcnow(),
        )
        if columns is None:
            return custom_columns.visible_fields(db, actor=actor)
        return custom_columns.chosen(db, actor=actor, keys=columns)


def quoted(text: str) -> str:
    """A cell of text someone typed, defused and always in quotes (RFC 4180)."""
    return '"' + defuse(text).replace('"', '""') + '"'


def _quoted_inside(dialect: str, column: Any) -> ColumnElement[str]:
    """What `quoted` puts between the quotes, made by the database. The tests on the first
    character and on a quote come first and allocate nothing: most cells need neither."""
    first, has_quote = (
        (func.unicode(column), func.instr(column, '"'))
        if dialect == "sqlite"
        else (func.ascii(column), func.strpos(column, '"'))
    )
    defused = case((first.in_([ord(c) for c in RISKY]), literal("'") + column), else_=column)
    return case((has_quote > 0, func.replace(defused, '"', '""')), else_=defused)


def _formatted(dialect: str, template: str, *cells: Any) -> ColumnElement[str]:
    """TEMPLATE with each %s replaced by a cell (NULL by nothing), in one call: SQLite's
    printf (format() needs 3.38), PostgreSQL's format."""
    if dialect == "sqlite":
        return func.printf(template, *cells, type_=String)
    return func.format(template, *cells, type_=String)


def _ids(dialect: str, link: Any, link_column: Any) -> Any:
    """The ids of a user's groups or roles, comma-separated: on SQLite a correlated
    aggregate; on PostgreSQL a subquery aggregating every user's (joined in _joined)."""
    if dialect == "sqlite":
        joined = func.group_concat(link_column)
        return select(joined).where(link.user_id == User.id).scalar_subquery()
    return _pg_ids(link, link_column).c.ids


def _role_ids(dialect: str) -> Any:
    """The ids of a user's roles: on SQLite the row's own `role_ids` ('[1,3]', which the
    database keeps from user_roles), read with the row where a correlated aggregate per
    user cost a second a million; on PostgreSQL as its group ids are ('1,3')."""
    if dialect == "sqlite":
        return User.role_ids
    return _ids(dialect, UserRole, UserRole.role_id)


@cache  # one subquery each, named by the columns and joined by _joined
def _pg_ids(link: Any, link_column: Any) -> Any:
    joined = func.string_agg(cast(link_column, String), ",").label("ids")
    return select(link.user_id, joined).group_by(link.user_id).subquery(f"{link.__tablename__}_ids")


def _joined(dialect: str, statement: Select[str, str, str]) -> Select[str, str, str]:
    """STATEMENT reading the users, on PostgreSQL with each one's group and role ids
    joined: both aggregated in user id order and merged with the users read in that
    order (a subquery per user cost 7 µs each, twice, 14 s a million)."""
    if dialect == "sqlite":
        return statement.select_from(User)
    groups = _pg_ids(UserGroup, UserGroup.group_id)
    roles = _pg_ids(UserRole, UserRole.role_id)
    return statement.select_from(
        User.__table__.outerjoin(groups, groups.c.user_id == User.id).outerjoin(
            roles, roles.c.user_id == User.id
        )
    )


def _times(dialect: str, *columns: Any) -> tuple[str, list[Any]]:
    """The template pieces (comma-separated) and the cells that write each of COLUMNS as
    ISO 8601 text in UTC to the second ('2026-11-23T09:30:00Z'), or nothing for NULL.

    On SQLite from the text UTCDateTime stores, 'YYYY-MM-DD HH:MM:SS.ffffff': the date is
    the first 10 characters (printf's %.10s, no copy made) and 'T' || the time || 'Z' the
    rest (NULL, so nothing, for NULL). A tenth of the export's time went in substr,
    replace and || over the whole 19 characters; strftime, which parses, took three times
    that."""
    if dialect == "sqlite":
        rest = [literal("T") + func.substr(column, 12, 8) + literal("Z") for column in columns]
        return ",".join(["%.10s%s"] * len(columns)), [
            cell for pair in zip(columns, rest, strict=True) for cell in pair
        ]
    return ",".join(["%s"] * len(columns)), [
        func.to_char(
            column.op("AT TIME ZONE")(literal_column("'UTC'")), 'YYYY-MM-DD"T"HH24:MI:SS"Z"'
        )
        for column in columns
    ]


def _yes(column: Any) -> ColumnElement[str]:
    return case((column.is_(None), "no"), else_="yes")


def _sorted_only(column: Any) -> Any:
    """SQLite's unary + : the same value, which no index can deliver in order."""
    return UnaryExpression(column, operator=custom_op("+"))


def _statement(dialect: str) -> Select[str, str, str]:
    """Each user's line of CSV as the database can make it: the cells before the team, the
    user's team, group and role ids as one key, and the cells after the permissions."""
    times, time_cells = _times(dialect, User.created_at, User.last_login_at, User.last_seen_at)
    return select(
        _formatted(
            dialect,
            '"%s","%s","%s",%s,%s,%s',
            _quoted_inside(dialect, User.first_name),
            _quoted_inside(dialect, User.last_name),
            _quoted_inside(dialect, User.email),
            User.status,
            _yes(User.email_verified_at),
            _yes(User.validated_at),
        ),
        _formatted(
            dialect,
            "%s:%s:%s",
            User.team_id,
            _ids(dialect, UserGroup, UserGroup.group_id),
            _role_ids(dialect),
        ),
        _formatted(
            dialect, times + ",%s,%s", *time_cells, User.churn_level, User.churn_probability
        ),
    )


class _MembershipCells(dict[str, str]):
    """The team, groups, roles and permissions cells by the key of a user's team, group
    and role ids ('3:1,4:2'; on SQLite '3:1,4:[2]'), each worked out when first met: an
    organization has few teams, groups and roles, and fewer combinations of them in use."""

    def __init__(self, db: Session, organization_id: int) -> None:
        super().__init__()

        def of(model: Any) -> dict[str, Any]:
            return {
                str(row.id): row
                for row in db.scalars(select(model).where(model.organization_id == organization_id))
            }

        self.teams, self.groups, self.roles = of(Team), of(Group), of(Role)

    def __missing__(self, key: str) -> str:
        team_id, group_ids, role_ids = key.split(":")
        role_ids = role_ids.strip("[]")  # SQLite's JSON array
        team = quoted(self.teams[team_id].name) if team_id else ""
        groups = [self.groups[i].name for i in group_ids.split(",")] if group_ids else []
        roles = [self.roles[i] for i in role_ids.split(",")] if role_ids else []
        held = ";".join(sorted({p for role in roles for p in role.permissions}))
        cells = [
            team,
            quoted(";".join(sorted(groups))) if groups else "",
            quoted(";".join(sorted(r.name for r in roles))) if roles else "",
            held,
        ]
        self[key] = ",".join(cells)
        return self[key]


def _batches(connection: Connection, statement: Select[str, str, str]) -> Iterator[Sequence[Any]]:
    """The rows of STATEMENT, BATCH at a time: on SQLite as the driver's cursor gives them
    (rows made by SQLAlchemy cost a second a million), on PostgreSQL through a server-side
    cursor."""
    if connection.dialect.name == "sqlite":
        cursor = connection.execute(statement).cursor
        while batch := cursor.fetchmany(BATCH):
            yield batch
        return
    yield from connection.execute(statement, execution_options={"yield_per": BATCH}).partitions()


# Distinct values of a field whose cells are kept (a text field may hold one per user).
_CELLS_KEPT = 16384


class _AttributeCells:
    """The custom columns' cells of a user whose attributes are STORED (JSON text on
    SQLite, read here with orjson, a third of the json module's time; a dict on
    PostgreSQL), each after a comma: text quoted and defused, numbers, dates and yes/no as
    they are. A field's values recur (options, countries, dates, numbers): each one's cell
    is worked out once, up to _CELLS_KEPT per field. (Numbers are finite and within
    NUMBER_MAX, field_rules: orjson reads every one as the json module does.)"""

    def __init__(self, fields: Sequence[FieldSpec]) -> None:
        self.fields: list[tuple[FieldSpec, str, dict[str | int, str]]] = [
            (spec, spec.key, {}) for spec in fields
        ]

    def __call__(self, stored: Any) -> str:
        values = orjson.loads(stored) if stored.__class__ is str else stored
        get = (values or {}).get
        cells = [""]
        append = cells.append
        for spec, key, known in self.fields:
            value = get(key)
            if value is None:
                append("")
                continue
            kind = value.__class__
            if kind is not str and kind is not int:  # not bool, nor float (1.0 == 1)
                append(_attribute_cell(spec, value))
                continue
            cell = known.get(value)
            if cell is None:
                cell = _attribute_cell(spec, value)
                if len(known) < _CELLS_KEPT:
                    known[value] = cell
            append(cell)
        return ",".join(cells)


def _attribute_cell(spec: FieldSpec, value: Any) -> str:
    text = custom_columns.export_cell(spec, value)
    plain = spec.type in ("number", "boolean", "date") or not text
    return text if plain else quoted(text)


def stream(
    database: Database,
    *,
    actor: Actor,
    q: str,
    sort: str,
    columns: Sequence[FieldSpec] = (),
) -> Iterator[str]:
    """The CSV, BATCH users at a time (the header first), with the custom fields COLUMNS
    (from `check`) after the built-in columns: their values read only then."""
    key = users.sort_key(sort)
    names = custom_columns.header_names(columns, HEADER)
    yield ",".join([*HEADER, *names]) + "\r\n"  # keys: lowercase letters, digits, _
    with database.sessions() as db:
        cells = _MembershipCells(db, actor.organization_id)
        dialect = db.get_bind().dialect.name
        where = users.matching(
            db, actor=actor, query=builder.parse_query(q), permission=Permission.USERS_EXPORT
        )
        # Sorted, never read along the sort's index (PostgreSQL: each row from another
        # page of the table, 29 s a million against 7 s sorted).
        order = key.order_all(_sorted_only if dialect == "sqlite" else pg_unindexed)
        read = _statement(dialect)
        if columns:
            read = read.add_columns(User.attributes)
            attribute_cells = _AttributeCells(columns)
        statement = _joined(dialect, read).where(*where).order_by(*order)
        connection = db.connection()
        with sorting_in_little_memory(connection):
            for batch in _batches(connection, statement):
                if columns:
                    yield "".join(
                        [
                            f"{head},{cells[ids]},{tail}{attribute_cells(stored)}\r\n"
                            for head, ids, tail, stored in batch
                        ]
                    )
                else:
                    yield "".join([f"{head},{cells[ids]},{tail}\r\n" for head, ids, tail in batch])
