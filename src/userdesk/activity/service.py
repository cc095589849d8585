"""A user's timeline: what they did (sign-ins, product events) and what was done to them
(audit events), merged, newest first, paged by key."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import ColumnElement, select, tuple_
from sqlalchemy.orm import Session

from userdesk.access import service as access
from userdesk.access.rules import Actor, Permission
from userdesk.activity.models import ActivityEvent
from userdesk.audit.models import AuditEvent
from userdesk.db.paging import SortKey, decode_cursor, encode_cursor
from userdesk.errors import InvalidInput, NotFound
from userdesk.users.models import User

PAGE_SIZE = 50
# Entries order by (when, source, id), newest first; the source breaks ties in time.
ACTIVITY, AUDIT = 0, 1
# Only its column types matter: the cursor holds (when, source, id).
_CURSOR = SortKey("timeline", (ActivityEvent.occurred_at, ActivityEvent.id, ActivityEvent.id))


class TimelineEntry(BaseModel):
    source: str  # "activity": the user did it; "audit": it was done to them
    id: str
    occurred_at: datetime
    action: str
    actor: str
    reference: str  # the user's id
    details: dict[str, Any]


class TimelinePage(BaseModel):
    items: list[TimelineEntry]
    next_cursor: str | None


def _after(
    when: Any, ident: Any, rank: int, cursor: tuple[datetime, int, int] | None
) -> list[ColumnElement[bool]]:
    if cursor is None:
        return []
    t0, r0, id0 = cursor
    if rank < r0:
        return [when <= t0]
    if rank > r0:
        return [when < t0]
    return [tuple_(when, ident) < tuple_(t0, id0)]


def timeline(
    db: Session, *, actor: Actor, user_id: int, cursor: str | None = None, limit: int = PAGE_SIZE
) -> TimelinePage:
    """One page of the user's timeline.

    Raises:
        PermissionDenied: the actor may not see users' activity.
        NotFound: no such user within reach.
        InvalidInput: a cursor not from this timeline, or a limit out of 1..200.
    """
    access.require(actor, Permission.USERS_ACTIVITY)
    if not 1 <= limit <= 200:
        raise InvalidInput(
            f"Limit {limit} is out of range.", fields={"limit": f"{limit} is not between 1 and 200"}
        )
    user = db.scalar(
        select(User).where(
            User.id == user_id, access.users_in_scope(actor, Permission.USERS_ACTIVITY)
        )
    )
    if user is None:
        raise NotFound(f"No user {user_id}.", code="user.not_found")
    position = None
    if cursor:
        t0, r0, id0 = decode_cursor(_CURSOR, cursor)
        position = (t0, int(r0), int(id0))
    did = db.scalars(
        select(ActivityEvent)
        .where(
            ActivityEvent.user_id == user.id,
            *_after(ActivityEvent.occurred_at, ActivityEvent.id, ACTIVITY, position),
        )
        .order_by(ActivityEvent.occurred_at.desc(), ActivityEvent.id.desc())
        .limit(limit + 1)
    ).all()
    done = db.scalars(
        select(AuditEvent)
        .where(
            AuditEvent.organization_id == user.organization_id,
            AuditEvent.target_type == "user",
            AuditEvent.target_id == str(user.id),
            *_after(AuditEvent.occurred_at, AuditEvent.id, AUDIT, position),
        )
        .order_by(AuditEvent.occurred_at.desc(), AuditEvent.id.desc())
        .limit(limit + 1)
    ).all()
    merged = sorted(
        [(e.occurred_at, ACTIVITY, e.id, e) for e in did]
        + [(e.occurred_at, AUDIT, e.id, e) for e in done],
        key=lambda entry: (entry[0], entry[1], entry[2]),
        reverse=True,
    )
    page = merged[:limit]
    next_cursor = None
    if len(merged) > limit:
        t, rank, ident, _ = page[-1]
        next_cursor = encode_cursor(_CURSOR, [t, rank, ident])
    return TimelinePage(items=[_entry(user, e) for *_, e in page], next_cursor=next_cursor)


def _entry(user: User, event: ActivityEvent | AuditEvent) -> TimelineEntry:
    if isinstance(event, ActivityEvent):
        return TimelineEntry(
            source="activity",
            id=str(event.id),
            occurred_at=event.occurred_at,
            action=event.type,
            actor=user.name,
            reference=str(user.id),
            details=event.properties,
        )
    details: dict[str, Any] = {"changes": event.changes}
    if event.reason:
        details["reason"] = event.reason
    if event.ip:
        details["ip"] = event.ip
    return TimelineEntry(
        source="audit",
        id=str(event.id),
        occurred_at=event.occurred_at,
        action=event.action,
        actor=event.actor_name,
        reference=str(user.id),
        details=details,
    )
