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

from collections.abc import Iterator
from functools import cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
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
from userdesk.db.session import Database
from userdesk.query import builder
from userdesk.users import service as users
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
)
BATCH = 1000
RISKY = ("=", "+", "-", "@", "\t", "\r")


def defuse(cell: str) -> str:
    """A cell a spreadsheet would run as a formula, made plain text with a leading '."""
    return "'" + cell if cell.startswith(RISKY) else cell


def check(database: Database, *, actor: Actor, q: str, sort: str) -> None:
    """Refuse now, before the first byte, what the export would refuse.

    Raises:
        PermissionDenied: the actor may not export users.
        InvalidInput: a bad query or sort.
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


def quoted(text: str) -> str:
    """A cell of text someone typed, defused and always in quotes (RFC 4180)."""
    return '"' + defuse(text).replace('"', '""') + '"'


def _quoted(column: Any) -> ColumnElement[str]:
    """quoted, done by the database for the cells that differ on every row."""
    defused = case((func.substr(column, 1, 1).in_(RISKY), literal("'") + column), else_=column)
    return literal('"') + func.replace(defused, '"', '""') + literal('"')


def _joined(*cells: Any) -> ColumnElement[str]:
    """CELLS as one piece of a CSV line."""
    line: ColumnElement[str] = cells[0]
    for cell in cells[1:]:
        line = line + literal(",") + cell
    return line


def _ids(dialect: str, link: Any, link_column: Any) -> Any:
    """The ids of a user's groups or roles, comma-separated (a correlated aggregate)."""
    if dialect == "sqlite":
        joined = func.group_concat(link_column)
    else:
        joined = func.string_agg(cast(link_column, String), ",")
    return select(joined).where(link.user_id == User.id).scalar_subquery()


def _time(dialect: str, column: Any) -> ColumnElement[str]:
    """COLUMN as ISO 8601 text in UTC to the second ('2026-11-23T09:30:00Z'), or ''."""
    if dialect == "sqlite":
        text = func.strftime("%Y-%m-%dT%H:%M:%SZ", column)
    else:
        text = func.to_char(
            column.op("AT TIME ZONE")(literal_column("'UTC'")), 'YYYY-MM-DD"T"HH24:MI:SS"Z"'
        )
    return func.coalesce(text, "")


def _yes(column: Any) -> ColumnElement[str]:
    return case((column.is_(None), "no"), else_="yes")


def _sorted_only(column: Any) -> Any:
    """SQLite's unary + : the same value, which no index can deliver in order."""
    return UnaryExpression(column, operator=custom_op("+"))


def _statement(dialect: str) -> Select[Any]:
    """Each user's line of CSV as the database can make it: the cells before the team,
    the team, group and role ids, and the cells after the permissions."""
    return select(
        _joined(
            _quoted(User.first_name),
            _quoted(User.last_name),
            _quoted(User.email),
            User.status,
            _yes(User.email_verified_at),
            _yes(User.validated_at),
        ),
        User.team_id,
        _ids(dialect, UserGroup, UserGroup.group_id),
        _ids(dialect, UserRole, UserRole.role_id),
        _joined(
            _time(dialect, User.created_at),
            _time(dialect, User.last_login_at),
            _time(dialect, User.last_seen_at),
            func.coalesce(User.churn_level, ""),
        ),
    )


class _Names:
    """The cells for teams, groups and roles by their ids, each worked out once: an
    organization has few of them, and fewer combinations in use."""

    def __init__(self, db: Session, organization_id: int) -> None:
        def of(model: Any) -> dict[str, Any]:
            return {
                str(row.id): row
                for row in db.scalars(select(model).where(model.organization_id == organization_id))
            }

        self.teams, self.groups, self.roles = of(Team), of(Group), of(Role)

    @cache  # noqa: B019 - one instance per export, dropped with it
    def team(self, team_id: int | None) -> str:
        return quoted(self.teams[str(team_id)].name) if team_id else ""

    @cache  # noqa: B019
    def groups_of(self, ids: str | None) -> str:
        return quoted(";".join(sorted(self.groups[i].name for i in ids.split(",")))) if ids else ""

    @cache  # noqa: B019
    def roles_of(self, ids: str | None) -> str:
        """Two cells: the role names, and the permissions they hold together."""
        roles = [self.roles[i] for i in ids.split(",")] if ids else []
        held = sorted({p for role in roles for p in role.permissions})
        names = quoted(";".join(sorted(r.name for r in roles))) if roles else ""
        return f"{names},{';'.join(held)}"


def stream(database: Database, *, actor: Actor, q: str, sort: str) -> Iterator[str]:
    """The CSV, BATCH users at a time (the header first)."""
    key = users.sort_key(sort)
    yield ",".join(HEADER) + "\r\n"
    with database.sessions() as db:
        names = _Names(db, actor.organization_id)
        dialect = db.get_bind().dialect.name
        where = users.matching(
            db, actor=actor, query=builder.parse_query(q), permission=Permission.USERS_EXPORT
        )
        order = key.order_all(_sorted_only if dialect == "sqlite" else lambda column: column)
        statement = _statement(dialect).where(*where).order_by(*order)
        connection = db.connection()
        with sorting_in_little_memory(connection):
            # A batch at a time (through a server-side cursor on PostgreSQL).
            result = connection.execute(statement, execution_options={"yield_per": BATCH})
            for batch in result.partitions():
                yield "".join(
                    f"{head},{names.team(team)},{names.groups_of(groups)},"
                    f"{names.roles_of(roles)},{tail}\r\n"
                    for head, team, groups, roles, tail in batch
                )
