"""A user's timeline: what they did (sign-ins, product events) and what was done to them
(audit events), merged, newest first, paged by key."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from pydantic import BaseModel
from sqlalchemy import ColumnElement, or_, select, tuple_
from sqlalchemy.orm import Session

from userdesk.access import service as access
from userdesk.access.rules import Actor, Permission
from userdesk.activity.models import ActivityEvent
from userdesk.audit import service as audit
from userdesk.audit.models import AuditEvent
from userdesk.db.base import utcnow
from userdesk.db.paging import SortKey, decode_cursor, encode_cursor
from userdesk.errors import InvalidInput, NotFound
from userdesk.users.models import User
from userdesk.users.rules import normalize_email
from userdesk.validation import parse_id

PAGE_SIZE = 50
PAGE_MAX = 200
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
    impersonator: str | None = None  # the admin acting as the user, if one was
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
    if not 1 <= limit <= PAGE_MAX:
        raise InvalidInput(
            f"Limit {limit} is out of range.",
            fields={"limit": f"{limit} is not between 1 and {PAGE_MAX}"},
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
            impersonator=event.properties.get("impersonated_by"),
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
        impersonator=event.impersonator_name,
        reference=str(user.id),
        details=details,
    )


MAX_EVENTS = 1000
EVENT_TYPE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
PROPERTIES_MAX = 10_000  # bytes of JSON
FUTURE_SLACK = timedelta(minutes=5)


class EventsResult(BaseModel):
    accepted: int
    duplicates: int
    errors: list[dict[str, Any]]  # {"index", "field", "detail"} of each refused item


def record_events(db: Session, *, actor: Actor, items: list[Any]) -> EventsResult:
    """Keep what the host product reports users did. Each bad item is reported by its
    index and the good ones are kept; an item whose `id` was seen before is skipped.

    Raises:
        PermissionDenied: the actor may not update users.
        InvalidInput: not a list, or more than MAX_EVENTS items.
    """
    access.require(actor, Permission.USERS_UPDATE)
    if len(items) > MAX_EVENTS:
        raise InvalidInput(
            f"Send at most {MAX_EVENTS} events at a time.",
            fields={"events": f"has {len(items)} items; the most is {MAX_EVENTS}"},
        )
    errors: list[dict[str, Any]] = []
    good: list[tuple[int, dict[str, Any], datetime]] = []
    for index, item in enumerate(items):
        problem = _check_event(item)
        if problem:
            errors.append({"index": index, "field": problem[0], "detail": problem[1]})
        else:
            good.append((index, item, _when(item["occurred_at"])))
    users = _owners(db, actor, [item for _, item, _ in good])
    external = [str(item["id"]) for _, item, _ in good if item.get("id") is not None]
    seen = (
        set(
            db.scalars(
                select(ActivityEvent.external_id).where(
                    ActivityEvent.organization_id == actor.organization_id,
                    ActivityEvent.external_id.in_(external),
                )
            )
        )
        if external
        else set()
    )
    accepted = duplicates = 0
    latest: dict[int, datetime] = {}
    for index, item, when in good:
        user = users.get(_owner_key(item))
        if user is None:
            field = "user_id" if item.get("user_id") is not None else "email"
            errors.append(
                {
                    "index": index,
                    "field": field,
                    "detail": f"'{item.get(field)}' is not a user you can reach",
                }
            )
            continue
        external_id = str(item["id"]) if item.get("id") is not None else None
        if external_id is not None and external_id in seen:
            duplicates += 1
            continue
        if external_id is not None:
            seen.add(external_id)
        db.add(
            ActivityEvent(
                organization_id=user.organization_id,
                user_id=user.id,
                type=item["type"],
                occurred_at=when,
                properties=item.get("properties") or {},
                external_id=external_id,
            )
        )
        latest[user.id] = max(when, latest.get(user.id, when))
        accepted += 1
    for user in users.values():
        newest = latest.get(user.id)
        if newest and (user.last_seen_at is None or newest > user.last_seen_at):
            user.last_seen_at = newest
    db.flush()
    errors.sort(key=lambda e: e["index"])
    if accepted:
        audit.record(
            db,
            actor=actor,
            action="activity.events_recorded",
            changes={"accepted": accepted, "duplicates": duplicates, "refused": len(errors)},
        )
    return EventsResult(accepted=accepted, duplicates=duplicates, errors=errors)


def _when(value: str) -> datetime:
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _check_event(item: Any) -> tuple[str, str] | None:
    """(field, what is wrong) for a malformed item, or None."""
    if not isinstance(item, dict):
        return ("event", "is not an object")
    if item.get("user_id") is None and not item.get("email"):
        return ("user_id", "give user_id or email")
    if item.get("user_id") is not None and parse_id(str(item["user_id"])) is None:
        return ("user_id", f"'{item['user_id']}' is not an id")
    kind = item.get("type")
    if not isinstance(kind, str) or not EVENT_TYPE.match(kind):
        return ("type", f"'{kind}' is not a type like ticket.created (a-z, 0-9, . _ -)")
    when = item.get("occurred_at")
    try:
        moment = _when(when) if isinstance(when, str) else None
    except ValueError:
        moment = None
    if moment is None:
        return ("occurred_at", f"'{when}' is not an ISO 8601 time")
    if moment > utcnow() + FUTURE_SLACK:
        return ("occurred_at", f"'{when}' is in the future")
    properties = item.get("properties", {})
    if not isinstance(properties, dict):
        return ("properties", "is not an object")
    if len(orjson.dumps(properties)) > PROPERTIES_MAX:
        return ("properties", f"is larger than {PROPERTIES_MAX} bytes")
    if item.get("id") is not None and len(str(item["id"])) > 100:
        return ("id", "is longer than 100 characters")
    return None


def _owner_key(item: dict[str, Any]) -> str:
    if item.get("user_id") is not None:
        return f"id:{item['user_id']}"
    return f"email:{normalize_email(str(item['email']))}"


def _owners(db: Session, actor: Actor, items: list[dict[str, Any]]) -> dict[str, User]:
    """The users the items name, within the actor's reach, by owner key."""
    ids = {int(i["user_id"]) for i in items if i.get("user_id") is not None}
    emails = {normalize_email(str(i["email"])) for i in items if i.get("user_id") is None}
    found = db.scalars(
        select(User).where(
            access.users_in_scope(actor, Permission.USERS_UPDATE),
            or_(User.id.in_(ids), User.email_normalized.in_(emails)),
        )
    )
    owners: dict[str, User] = {}
    for user in found:
        if user.id in ids:
            owners[f"id:{user.id}"] = user
        if user.email_normalized in emails:
            owners[f"email:{user.email_normalized}"] = user
    return owners
