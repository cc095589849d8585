"""CSV export of exactly the users a query and a sort show, streamed page by page.

Each page is read in a short session of its own (key-set paging, never OFFSET), so that
memory stays flat and no transaction stays open while the client downloads.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime

from sqlalchemy import select

from userdesk.access import service as access
from userdesk.access.models import Role
from userdesk.access.rules import Actor, Permission
from userdesk.db.base import utcnow
from userdesk.db.session import Database
from userdesk.query import builder
from userdesk.users import service as users

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
BATCH = users.MAX_PAGE_SIZE
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


def stream(database: Database, *, actor: Actor, q: str, sort: str) -> Iterator[str]:
    """The CSV, a page of users at a time (the header first)."""
    with database.sessions() as db:
        permissions = {
            role.name: role.permissions
            for role in db.scalars(
                select(Role).where(Role.organization_id == actor.organization_id)
            )
        }
    buffer = io.StringIO()
    writer = csv.writer(buffer)  # RFC 4180: quotes where needed, CRLF line ends
    writer.writerow(HEADER)
    cursor: str | None = None
    while True:
        with database.sessions() as db:
            page = users.list_users(
                db,
                actor=actor,
                q=q,
                sort=sort,
                limit=BATCH,
                cursor=cursor,
                permission=Permission.USERS_EXPORT,
            )
        for user in page.items:
            roles = [r["name"] for r in user["roles"]]
            held = sorted({p for name in roles for p in permissions.get(name, [])})
            writer.writerow(
                defuse(cell)
                for cell in (
                    user["first_name"],
                    user["last_name"],
                    user["email"],
                    user["status"],
                    "yes" if user["email_verified"] else "no",
                    "yes" if user["validated"] else "no",
                    user["team"]["name"] if user["team"] else "",
                    ";".join(g["name"] for g in user["groups"]),
                    ";".join(roles),
                    ";".join(held),
                    _time(user["created_at"]),
                    _time(user["last_login_at"]),
                    _time(user["last_seen_at"]),
                    user["churn"] or "",
                )
            )
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        cursor = page.next_cursor
        if cursor is None:
            return
