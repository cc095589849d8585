"""CSV export of exactly the users a query and a sort show, streamed page by page.

The same conditions and sort key as the Users list (users.matching, users.sort_key), read
as plain rows with the team, group and role names aggregated in the same statement. Each
page is read in a short session of its own (key-set paging, never OFFSET), so that memory
stays flat and no transaction stays open while the client downloads.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select

from userdesk.access import service as access
from userdesk.access.models import Group, Role, Team
from userdesk.access.rules import Actor, Permission
from userdesk.db.base import utcnow
from userdesk.db.paging import fetch_page
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


def _time(value: datetime | None) -> str:
    return value.isoformat() if value else ""


def _names(
    db_dialect: str, name: Any, link: Any, user_column: Any, link_column: Any, model: Any
) -> Any:
    """The names of a user's groups or roles in one cell (a correlated aggregate)."""
    joined = func.group_concat(name, ";") if db_dialect == "sqlite" else func.string_agg(name, ";")
    return (
        select(joined)
        .select_from(link)
        .join(model, model.id == link_column)
        .where(user_column == User.id)
        .scalar_subquery()
    )


def stream(database: Database, *, actor: Actor, q: str, sort: str) -> Iterator[str]:
    """The CSV, BATCH users at a time (the header first), one statement per batch."""
    key = users.sort_key(sort)
    with database.sessions() as db:
        permissions = {
            role.name: role.permissions
            for role in db.scalars(
                select(Role).where(Role.organization_id == actor.organization_id)
            )
        }
        dialect = db.get_bind().dialect.name
    query: Select[Any] = select(
        User.id,
        User.first_name,
        User.last_name,
        User.email,
        User.email_normalized,
        User.status,
        User.email_verified_at,
        User.validated_at,
        Team.name.label("team"),
        _names(dialect, Group.name, UserGroup, UserGroup.user_id, UserGroup.group_id, Group).label(
            "groups"
        ),
        _names(dialect, Role.name, UserRole, UserRole.user_id, UserRole.role_id, Role).label(
            "roles"
        ),
        User.created_at,
        User.last_login_at,
        User.last_seen_at,
        User.churn_level,
    ).join(Team, Team.id == User.team_id, isouter=True)
    buffer = io.StringIO()
    writer = csv.writer(buffer)  # RFC 4180: quotes where needed, CRLF line ends
    writer.writerow(HEADER)
    cursor: str | None = None
    while True:
        with database.sessions() as db:
            where = users.matching(
                db, actor=actor, query=builder.parse_query(q), permission=Permission.USERS_EXPORT
            )
            rows, cursor = fetch_page(db, query.where(*where), key, cursor=cursor, limit=BATCH)
        for row in rows:
            roles = sorted((row.roles or "").split(";")) if row.roles else []
            held = sorted({p for name in roles for p in permissions.get(name, [])})
            writer.writerow(
                defuse(cell)
                for cell in (
                    row.first_name,
                    row.last_name,
                    row.email,
                    row.status,
                    "yes" if row.email_verified_at else "no",
                    "yes" if row.validated_at else "no",
                    row.team or "",
                    ";".join(sorted(row.groups.split(";"))) if row.groups else "",
                    ";".join(roles),
                    ";".join(held),
                    _time(row.created_at),
                    _time(row.last_login_at),
                    _time(row.last_seen_at),
                    row.churn_level or "",
                )
            )
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        if cursor is None:
            return
