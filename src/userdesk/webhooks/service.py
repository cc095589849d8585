"""Managing webhook endpoints: their URL, events and secret, and what was sent to them.

Webhooks carry every user of the organization, so managing them takes `webhooks.manage`
held over the whole organization (a team-scoped grant is not enough). An endpoint of
another organization is "not found", never "forbidden". The signing secret is answered
once, by create and by rotate; it is kept sealed, and neither a read nor the audit log
shows it. Every change is audited, in the caller's transaction.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import SplitResult, urlsplit, urlunsplit

import httpx
from sqlalchemy import case, delete, func, select, update
from sqlalchemy.orm import Session

from userdesk.access import service as access
from userdesk.access.rules import Actor, Permission, holds_everywhere
from userdesk.audit import service as audit
from userdesk.config import Settings
from userdesk.db.base import utcnow
from userdesk.db.paging import SortKey, decode_cursor, encode_cursor
from userdesk.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from userdesk.organizations.models import Organization
from userdesk.validation import text_problem
from userdesk.webhooks import catalog, events, signing
from userdesk.webhooks.delivery import RETRY_SCHEDULE, refusal
from userdesk.webhooks.models import WebhookAttempt, WebhookEndpoint, WebhookMessage
from userdesk.webhooks.schemas import (
    DESCRIPTION_MAX,
    ENDPOINTS_MAX,
    EVENT_TYPE_MAX,
    EVENT_TYPES_MAX,
    MESSAGE_STATUSES,
    URL_MAX,
    WebhookEndpointCreate,
    WebhookEndpointUpdate,
    WebhookStats,
)

# How long the previous secret keeps signing after a rotation: a receiver has a day to
# switch to the new one, and verifies with either meanwhile.
ROTATION_GRACE = timedelta(hours=24)
TEST_EVENT = "webhook.test"
TEST_MESSAGE = "This is a test event from Userdesk."
TESTS_WAITING_MAX = 5
MESSAGES_SORT = SortKey("webhook_messages", (WebhookMessage.id,), descending=True)
PAGE_SIZE = 50
PAGE_MAX = 200
CURSOR_MAX = 200  # the cursors given out are about 40 characters long
# How much of a refused value an error message repeats.
SHOWN_MAX = 80
TARGET_TYPE = "webhook_endpoint"


def retry_schedule_text() -> str:
    """The retry schedule as people read it, for the console and the API document:
    "immediately, then 5 s, 5 min, 30 min, 2 h, 5 h and 10 h (7 times) after the attempt
    before (about 3 days in all)"."""
    groups: list[list[Any]] = []  # [wait, times]
    for wait in RETRY_SCHEDULE[1:]:
        if groups and groups[-1][0] == wait:
            groups[-1][1] += 1
        else:
            groups.append([wait, 1])
    words = [_duration(wait) + (f" ({times} times)" if times > 1 else "") for wait, times in groups]
    listed = ", ".join(words[:-1]) + f" and {words[-1]}" if len(words) > 1 else "".join(words)
    first = "immediately" if not RETRY_SCHEDULE[0] else f"after {_duration(RETRY_SCHEDULE[0])}"
    days = sum(RETRY_SCHEDULE, timedelta()).total_seconds() / 86400
    return f"{first}, then {listed} after the attempt before (about {days:.0f} days in all)"


def _duration(wait: timedelta) -> str:
    seconds = int(wait.total_seconds())
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h"


def _require(actor: Actor) -> None:
    """Raises PermissionDenied unless ACTOR holds webhooks.manage over every user."""
    if not holds_everywhere(actor, Permission.WEBHOOKS_MANAGE):
        raise PermissionDenied(
            f"You need the '{Permission.WEBHOOKS_MANAGE}' permission over the whole "
            "organization for this.",
            code="permission_denied",
        )


def _shown(value: str) -> str:
    return value if len(value) <= SHOWN_MAX else value[:SHOWN_MAX] + "…"


def url_problem(url: str, *, allow_private: bool) -> str | None:
    """What is wrong with URL as an endpoint's address, or None. Pure.

    https only (http, loopback and private addresses only where the deployment allows
    private addresses, for development); a URL the delivery's HTTP client reads (a host
    that IDNA encodes, a port from 1 to 65535); no user or password in it (they would be
    sent to every redirect and logged), no fragment (never sent), at most URL_MAX
    characters. A host named by its address is judged here as delivery judges it (a name is
    judged at connect time, after DNS: `delivery.Sender.connect`).
    """
    if len(url) > URL_MAX:
        return f"is {len(url):,} characters long; at most {URL_MAX:,} are allowed"
    if problem := text_problem(url):
        return problem
    if not url:
        return "is required"
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in url):
        return f"'{_shown(url)}' contains spaces or control characters"
    try:
        parts: SplitResult = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"'{_shown(url)}' is not a URL ({exc})"
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        return f"'{_shown(url)}' is not an https:// URL"
    if scheme == "http" and not allow_private:
        return (
            f"'{_shown(url)}' is plain http: use https "
            "(http only where USERDESK_WEBHOOKS_ALLOW_PRIVATE is set)"
        )
    if not parts.hostname:
        return f"'{_shown(url)}' names no host"
    if parts.username is not None or parts.password is not None:
        return f"'{_shown(url)}' holds a user name or password; send none in the URL"
    if parts.fragment or url.endswith("#"):
        return f"'{_shown(url)}' has a fragment (#...), which is never sent"
    if port == 0:
        return f"'{_shown(url)}' names port 0"
    try:
        host = httpx.URL(url).host
    except (httpx.InvalidURL, ValueError) as exc:  # idna's errors are ValueErrors
        return f"'{_shown(url)}' is not a URL webhooks can be sent to ({_shown(str(exc))})"
    if not allow_private and (problem := _host_problem(host)):
        return f"'{_shown(url)}' is refused: {problem} (webhooks go to public addresses only)"
    return None


def _host_problem(host: str) -> str | None:
    """Why HOST, an address or a name, is known not to be public before any DNS look-up
    ("127.0.0.1 is a loopback address"), or None."""
    name = host.lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return f"{host} is a loopback name"
    try:
        address = str(ipaddress.ip_address(name.strip("[]")))
    except ValueError:
        try:  # the forms a resolver takes for IPv4 too: 127.1, 2130706433, 0x7f.0.0.1
            address = socket.inet_ntoa(socket.inet_aton(name))
        except OSError:
            return None  # a name: judged at connect time
    refused = refusal(address)
    return refused.removeprefix("refused: ") if refused else None


def _description_problem(description: str) -> str | None:
    if len(description) > DESCRIPTION_MAX:
        return f"is {len(description):,} characters long; at most {DESCRIPTION_MAX} are allowed"
    return text_problem(description)


def _checked(
    settings: Settings,
    problems: dict[str, str],
    *,
    url: str | None,
    description: str | None,
    event_types: list[str] | None,
) -> list[str] | None:
    """Record in PROBLEMS what is wrong with each given field; the event types cleaned."""
    if url is not None and (
        problem := url_problem(url, allow_private=settings.webhooks_allow_private)
    ):
        problems["url"] = problem
    if description is not None and (problem := _description_problem(description)):
        problems["description"] = problem
    if event_types is None:
        return None
    if len(event_types) > EVENT_TYPES_MAX:
        problems["event_types"] = (
            f"lists {len(event_types):,} types; at most {EVENT_TYPES_MAX} are allowed "
            "(an empty list: every type)"
        )
        return None
    if too_long := next((t for t in event_types if len(t) > EVENT_TYPE_MAX), None):
        problems["event_types"] = f"'{_shown(too_long)}' is not an event type"
        return None
    try:
        return catalog.check_event_types(event_types)
    except InvalidInput as error:
        problems["event_types"] = error.fields.get("event_types", error.message)
        return None


def _paused_by(actor: Actor) -> str:
    return f"Paused by {actor.name}"[:500]


def list_endpoints(db: Session, *, actor: Actor) -> list[WebhookEndpoint]:
    """The organization's endpoints, oldest first.

    Raises:
        PermissionDenied: the actor may not manage webhooks.
    """
    _require(actor)
    query = (
        select(WebhookEndpoint)
        .where(WebhookEndpoint.organization_id == actor.organization_id)
        .order_by(WebhookEndpoint.id)
    )
    return list(db.scalars(query))


def get_endpoint(db: Session, *, actor: Actor, endpoint_id: int) -> WebhookEndpoint:
    """One endpoint of the actor's organization.

    Raises:
        PermissionDenied: the actor may not manage webhooks.
        NotFound: no such endpoint in the organization.
    """
    _require(actor)
    endpoint = db.get(WebhookEndpoint, endpoint_id)
    if endpoint is None or endpoint.organization_id != actor.organization_id:
        raise NotFound(f"No webhook endpoint {endpoint_id}.", code="webhook.not_found")
    return endpoint


def _refuse_while_impersonating(actor: Actor) -> None:
    """An admin acting as someone may read webhooks and send messages again, but neither
    add, change nor delete an endpoint nor see a secret: where the users' data goes, and
    how it is signed, is the admin's own decision, taken as themselves (as their password,
    email and roles are).

    Raises:
        PermissionDenied: ACTOR is an admin impersonating someone.
    """
    access.refuse_while_impersonating(
        actor, "add, change or delete webhook endpoints, nor rotate their secrets,"
    )


def _lock_organization(db: Session, organization_id: int) -> None:
    """Take the organization's row lock that audit.record takes (FOR NO KEY UPDATE, see
    audit.service._last_hash) before a webhook change reads what it changes: two changes at
    once (two rotations, two creates at the cap) then run one after the other, each seeing
    the other's result, and in the order audit.record locks in (no deadlock). SQLite's
    writers hold the whole database already."""
    db.execute(
        select(Organization.id)
        .where(Organization.id == organization_id)
        .with_for_update(key_share=True)
    )


def _endpoint_to_change(db: Session, actor: Actor, endpoint_id: int) -> WebhookEndpoint:
    """The endpoint, read after the organization's lock, for a change of it.

    Raises:
        PermissionDenied: the actor may not manage webhooks, or is impersonating.
        NotFound: no such endpoint in the organization.
    """
    _require(actor)
    _refuse_while_impersonating(actor)
    _lock_organization(db, actor.organization_id)
    endpoint = db.scalar(
        select(WebhookEndpoint)
        .where(
            WebhookEndpoint.id == endpoint_id,
            WebhookEndpoint.organization_id == actor.organization_id,
        )
        .execution_options(populate_existing=True)
    )
    if endpoint is None:
        raise NotFound(f"No webhook endpoint {endpoint_id}.", code="webhook.not_found")
    return endpoint


@dataclass(frozen=True)
class CreatedEndpoint:
    """A new endpoint and its secret, which nothing shows again."""

    endpoint: WebhookEndpoint
    secret: str


def _view(endpoint: WebhookEndpoint) -> dict[str, Any]:
    """What the audit log keeps of an endpoint: never a secret, nor the URL's query string,
    where receivers often take a token."""
    url = urlsplit(endpoint.url)
    return {
        "url": urlunsplit(url._replace(query="…")) if url.query else endpoint.url,
        "description": endpoint.description,
        "event_types": list(endpoint.event_types or []),
        "enabled": endpoint.enabled,
    }


def create_endpoint(
    db: Session, *, actor: Actor, settings: Settings, data: WebhookEndpointCreate
) -> CreatedEndpoint:
    """Add an endpoint with a new signing secret, answered here once.

    Raises:
        PermissionDenied: the actor may not manage webhooks, or is impersonating.
        InvalidInput: a bad URL, description or event type, each named.
        Conflict: the organization has ENDPOINTS_MAX endpoints already.
    """
    _require(actor)
    _refuse_while_impersonating(actor)
    problems: dict[str, str] = {}
    types = _checked(
        settings, problems, url=data.url, description=data.description, event_types=data.event_types
    )
    if problems:
        raise InvalidInput("The webhook endpoint is not valid.", fields=problems)
    _lock_organization(db, actor.organization_id)
    count = db.scalar(
        select(func.count())
        .select_from(WebhookEndpoint)
        .where(WebhookEndpoint.organization_id == actor.organization_id)
    )
    if (count or 0) >= ENDPOINTS_MAX:
        raise Conflict(
            f"The organization has {count} webhook endpoints, the most it may have "
            f"({ENDPOINTS_MAX}): delete one first, or have one endpoint take more event types.",
            code="webhook.too_many",
        )
    secret = signing.new_secret()
    endpoint = WebhookEndpoint(
        organization_id=actor.organization_id,
        url=data.url,
        description=data.description,
        event_types=types or [],
        enabled=data.enabled,
        disabled_reason=None if data.enabled else _paused_by(actor),
        secret_sealed=signing.seal_secret(settings, secret, actor.organization_id),
        created_by_id=actor.user_id,
    )
    db.add(endpoint)
    db.flush()
    audit.record(
        db,
        actor=actor,
        action="webhook.created",
        target_type=TARGET_TYPE,
        target_id=endpoint.id,
        changes=_view(endpoint),
    )
    return CreatedEndpoint(endpoint, secret)


def update_endpoint(
    db: Session,
    *,
    actor: Actor,
    settings: Settings,
    endpoint_id: int,
    data: WebhookEndpointUpdate,
) -> WebhookEndpoint:
    """Change the fields given; `enabled` pauses or resumes it (see pause_endpoint).

    Raises:
        PermissionDenied: the actor may not manage webhooks, or is impersonating.
        NotFound: no such endpoint in the organization.
        InvalidInput: a bad URL, description or event type, each named.
    """
    endpoint = _endpoint_to_change(db, actor, endpoint_id)
    problems: dict[str, str] = {}
    types = _checked(
        settings,
        problems,
        url=data.url,
        description=data.description,
        event_types=data.event_types,
    )
    if problems:
        raise InvalidInput("The webhook endpoint is not valid.", fields=problems)
    before = _view(endpoint)
    if data.url is not None:
        endpoint.url = data.url
    if data.description is not None:
        endpoint.description = data.description
    if types is not None:
        endpoint.event_types = types
    if data.enabled is not None and data.enabled != endpoint.enabled:
        _set_enabled(endpoint, actor, data.enabled)
    after = _view(endpoint)
    changes = {
        field: {"from": before[field], "to": value}
        for field, value in after.items()
        if before[field] != value
    }
    if changes:
        _updated(db, actor, endpoint, changes)
    return endpoint


def _updated(db: Session, actor: Actor, endpoint: WebhookEndpoint, changes: dict[str, Any]) -> None:
    """Record that ENDPOINT was changed as CHANGES say (audited as webhook.updated)."""
    endpoint.updated_at = utcnow()
    db.flush()
    audit.record(
        db,
        actor=actor,
        action="webhook.updated",
        target_type=TARGET_TYPE,
        target_id=endpoint.id,
        changes=changes,
    )


def _set_enabled(endpoint: WebhookEndpoint, actor: Actor, enabled: bool) -> None:
    endpoint.enabled = enabled
    if enabled:
        # A fresh start: the three days of failures that disable an endpoint count anew.
        endpoint.disabled_reason = None
        endpoint.failing_since = None
    else:
        endpoint.disabled_reason = _paused_by(actor)


def pause_endpoint(db: Session, *, actor: Actor, endpoint_id: int) -> WebhookEndpoint:
    """Stop delivering to the endpoint: its messages wait until it is resumed.

    Raises:
        PermissionDenied: the actor may not manage webhooks, or is impersonating.
        NotFound: no such endpoint in the organization.
    """
    return _switch(db, actor, endpoint_id, enabled=False)


def resume_endpoint(db: Session, *, actor: Actor, endpoint_id: int) -> WebhookEndpoint:
    """Deliver to the endpoint again (also one disabled by a 410 or days of failures).

    Raises:
        PermissionDenied: the actor may not manage webhooks, or is impersonating.
        NotFound: no such endpoint in the organization.
    """
    return _switch(db, actor, endpoint_id, enabled=True)


def _switch(db: Session, actor: Actor, endpoint_id: int, *, enabled: bool) -> WebhookEndpoint:
    endpoint = _endpoint_to_change(db, actor, endpoint_id)
    if endpoint.enabled == enabled:
        return endpoint
    _set_enabled(endpoint, actor, enabled)
    _updated(db, actor, endpoint, {"enabled": {"from": not enabled, "to": enabled}})
    return endpoint


def delete_endpoint(db: Session, *, actor: Actor, endpoint_id: int) -> None:
    """Delete the endpoint with its messages and attempts (a worker sending one of them
    meanwhile keeps no attempt of it: delivery.record).

    Raises:
        PermissionDenied: the actor may not manage webhooks, or is impersonating.
        NotFound: no such endpoint in the organization.
    """
    endpoint = _endpoint_to_change(db, actor, endpoint_id)
    audit.record(
        db,
        actor=actor,
        action="webhook.deleted",
        target_type=TARGET_TYPE,
        target_id=endpoint.id,
        changes=_view(endpoint),
    )
    # The foreign keys cascade in the database; said here too, for SQLite without them.
    db.execute(delete(WebhookAttempt).where(WebhookAttempt.endpoint_id == endpoint.id))
    db.execute(delete(WebhookMessage).where(WebhookMessage.endpoint_id == endpoint.id))
    db.delete(endpoint)
    db.flush()


def rotate_secret(
    db: Session, *, actor: Actor, settings: Settings, endpoint_id: int
) -> CreatedEndpoint:
    """A new signing secret, answered here once; the previous one keeps signing beside
    it for ROTATION_GRACE, so that the receiver can switch without missing a message. Two
    rotations at once run one after the other: the second keeps the first's secret as the
    previous one, so each secret answered verifies for a day at least.

    Raises:
        PermissionDenied: the actor may not manage webhooks, or is impersonating.
        NotFound: no such endpoint in the organization.
    """
    endpoint = _endpoint_to_change(db, actor, endpoint_id)
    secret = signing.new_secret()
    now = utcnow()
    endpoint.previous_secret_sealed = endpoint.secret_sealed
    endpoint.previous_secret_expires_at = now + ROTATION_GRACE
    endpoint.secret_sealed = signing.seal_secret(settings, secret, actor.organization_id)
    endpoint.updated_at = now
    db.flush()
    audit.record(
        db,
        actor=actor,
        action="webhook.secret_rotated",
        target_type=TARGET_TYPE,
        target_id=endpoint.id,
        changes={"previous_secret_expires_at": endpoint.previous_secret_expires_at.isoformat()},
    )
    return CreatedEndpoint(endpoint, secret)


def send_test(db: Session, *, actor: Actor, endpoint_id: int) -> WebhookMessage:
    """Write a `webhook.test` message for this endpoint alone, whatever its event types.

    At most TESTS_WAITING_MAX of them wait at a time: a test tells whether the endpoint
    receives, and a click repeated thousands of times would make Userdesk post to any
    address given as fast as it can.

    Raises:
        PermissionDenied: the actor may not manage webhooks.
        NotFound: no such endpoint in the organization.
        Conflict: the endpoint is paused (nothing would be delivered), or TESTS_WAITING_MAX
            test events wait for it already.
    """
    endpoint = get_endpoint(db, actor=actor, endpoint_id=endpoint_id)
    if not endpoint.enabled:
        raise Conflict(
            "The endpoint is not enabled: resume it to send a test event.",
            code="webhook.disabled",
        )
    waiting = db.scalar(
        select(func.count())
        .select_from(WebhookMessage)
        .where(
            WebhookMessage.endpoint_id == endpoint.id,
            WebhookMessage.event_type == TEST_EVENT,
            WebhookMessage.status == "pending",
        )
    )
    if (waiting or 0) >= TESTS_WAITING_MAX:
        raise Conflict(
            f"{waiting} test events wait to be sent to this endpoint already: see how they "
            "went before sending another.",
            code="webhook.tests_waiting",
        )
    written = events.enqueue(
        db,
        organization_id=actor.organization_id,
        event_type=TEST_EVENT,
        user_id=None,
        data={"endpoint_id": str(endpoint.id), "message": TEST_MESSAGE},
        endpoint_ids=[endpoint.id],
    )
    db.flush()
    message = db.scalars(
        select(WebhookMessage)
        .where(WebhookMessage.endpoint_id == endpoint.id, WebhookMessage.event_type == TEST_EVENT)
        .order_by(WebhookMessage.id.desc())
        .limit(1)
    ).first()
    if not written or message is None:  # paused meanwhile
        raise Conflict("The endpoint is not enabled.", code="webhook.disabled")
    audit.record(
        db,
        actor=actor,
        action="webhook.test_sent",
        target_type=TARGET_TYPE,
        target_id=endpoint.id,
        changes={"message": message.uid},
    )
    return message


@dataclass(frozen=True)
class MessagePage:
    items: list[WebhookMessage]
    next_cursor: str | None


def list_messages(
    db: Session,
    *,
    actor: Actor,
    endpoint_id: int,
    event_type: str | None = None,
    status: str | None = None,
    cursor: str | None = None,
    limit: int = PAGE_SIZE,
) -> MessagePage:
    """The endpoint's messages, newest first, a page after CURSOR; EVENT_TYPE and STATUS
    (pending, delivered, failed) narrow them.

    Raises:
        PermissionDenied: the actor may not manage webhooks.
        NotFound: no such endpoint in the organization.
        InvalidInput: an unknown status or event type, a bad cursor, a limit out of range.
    """
    endpoint = get_endpoint(db, actor=actor, endpoint_id=endpoint_id)
    problems: dict[str, str] = {}
    if not 1 <= limit <= PAGE_MAX:
        problems["limit"] = f"{limit} is not between 1 and {PAGE_MAX}"
    if status is not None and status not in MESSAGE_STATUSES:
        problems["status"] = f"'{_shown(status)}' is not one of: {', '.join(MESSAGE_STATUSES)}"
    if event_type is not None and event_type not in catalog.EVENT_TYPES:
        problems["event_type"] = f"'{_shown(event_type)}' is not an event type"
    if cursor is not None and len(cursor) > CURSOR_MAX:
        problems["cursor"] = f"is {len(cursor):,} characters long: not a cursor this list gave out"
    if problems:
        raise InvalidInput("The filter is not valid.", fields=problems)
    query = select(WebhookMessage).where(WebhookMessage.endpoint_id == endpoint.id)
    if event_type:
        query = query.where(WebhookMessage.event_type == event_type)
    if status:
        query = query.where(WebhookMessage.status == status)
    if cursor:
        query = query.where(WebhookMessage.id < decode_cursor(MESSAGES_SORT, cursor)[0])
    found = list(db.scalars(query.order_by(WebhookMessage.id.desc()).limit(limit + 1)))
    more = len(found) > limit
    items = found[:limit]
    next_cursor = encode_cursor(MESSAGES_SORT, [items[-1].id]) if more else None
    return MessagePage(items, next_cursor)


def get_message(db: Session, *, actor: Actor, endpoint_id: int, message_id: int) -> WebhookMessage:
    """One message of the endpoint.

    Raises:
        PermissionDenied: the actor may not manage webhooks.
        NotFound: no such endpoint in the organization, or no such message of it.
    """
    endpoint = get_endpoint(db, actor=actor, endpoint_id=endpoint_id)
    message = db.get(WebhookMessage, message_id)
    if message is None or message.endpoint_id != endpoint.id:
        raise NotFound(
            f"No message {message_id} for webhook endpoint {endpoint_id}.",
            code="webhook.message_not_found",
        )
    return message


def attempts_of(db: Session, message: WebhookMessage) -> list[WebhookAttempt]:
    """MESSAGE's attempts, newest first (the caller has read the message through
    get_message, which checked the actor)."""
    query = (
        select(WebhookAttempt)
        .where(WebhookAttempt.message_id == message.id)
        .order_by(WebhookAttempt.id.desc())
    )
    return list(db.scalars(query))


def resend_message(
    db: Session, *, actor: Actor, endpoint_id: int, message_id: int
) -> WebhookMessage:
    """Send the message again, now: the same message (same `webhook-id`, same body), with
    the whole retry schedule before it again, also when a worker is sending it meanwhile.

    Raises:
        PermissionDenied: the actor may not manage webhooks.
        NotFound: no such endpoint in the organization, or no such message of it.
    """
    message = get_message(db, actor=actor, endpoint_id=endpoint_id, message_id=message_id)
    before = message.status
    # Every column written, the lease let go: a worker sending the message at this moment
    # no longer holds it, so its outcome does not undo the resend (delivery.record writes
    # only what the worker holds), and the message goes again.
    db.execute(
        update(WebhookMessage)
        .where(WebhookMessage.id == message.id)
        .values(
            status="pending",
            attempts=0,
            next_attempt_at=utcnow(),
            locked_by=None,
            locked_until=None,
        )
        .execution_options(synchronize_session=False)
    )
    db.refresh(message)
    audit.record(
        db,
        actor=actor,
        action="webhook.resent",
        target_type=TARGET_TYPE,
        target_id=endpoint_id,
        changes={"message": message.uid, "status": {"from": before, "to": "pending"}},
    )
    return message


def replay_failed(db: Session, *, actor: Actor, endpoint_id: int, since: datetime) -> int:
    """Send again every failed message of the endpoint written since SINCE (naive: UTC);
    how many there were.

    Raises:
        PermissionDenied: the actor may not manage webhooks.
        NotFound: no such endpoint in the organization.
        InvalidInput: SINCE is in the future.
    """
    endpoint = get_endpoint(db, actor=actor, endpoint_id=endpoint_id)
    try:
        since = since.replace(tzinfo=UTC) if since.tzinfo is None else since.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+01:00 is before the first UTC moment
        raise InvalidInput(
            "Replay from a moment in the past.",
            fields={"since": f"{since.isoformat()} is out of range"},
        ) from None
    now = utcnow()
    if since > now:
        raise InvalidInput(
            "Replay from a moment in the past.",
            fields={"since": f"{since.isoformat()} is in the future"},
        )
    result = db.execute(
        update(WebhookMessage)
        .where(
            WebhookMessage.endpoint_id == endpoint.id,
            WebhookMessage.status == "failed",
            WebhookMessage.created_at >= since,
        )
        .values(
            status="pending", attempts=0, next_attempt_at=now, locked_by=None, locked_until=None
        )
        .execution_options(synchronize_session=False)
    )
    count = int(getattr(result, "rowcount", 0) or 0)
    db.expire_all()
    audit.record(
        db,
        actor=actor,
        action="webhook.replayed",
        target_type=TARGET_TYPE,
        target_id=endpoint.id,
        changes={"since": since.isoformat(), "messages": count},
    )
    return count


def stats_of(db: Session, *, actor: Actor, endpoint_ids: Sequence[int]) -> dict[int, WebhookStats]:
    """Delivery counts and failure rates of the endpoints, by id (a few grouped counts).

    Raises:
        PermissionDenied: the actor may not manage webhooks.
    """
    _require(actor)
    ids = list(endpoint_ids)
    if not ids:
        return {}
    org = actor.organization_id
    by_status: dict[int, dict[str, int]] = {i: {} for i in ids}
    rows = db.execute(
        select(WebhookMessage.endpoint_id, WebhookMessage.status, func.count())
        .where(WebhookMessage.organization_id == org, WebhookMessage.endpoint_id.in_(ids))
        .group_by(WebhookMessage.endpoint_id, WebhookMessage.status)
    )
    for endpoint_id, status, count in rows:
        by_status[endpoint_id][status] = count
    day_ago = utcnow() - timedelta(hours=24)
    failed = case((WebhookAttempt.outcome == "failed", 1), else_=0)
    recent = case((WebhookAttempt.attempted_at >= day_ago, 1), else_=0)
    recent_failed = case(
        ((WebhookAttempt.attempted_at >= day_ago) & (WebhookAttempt.outcome == "failed"), 1),
        else_=0,
    )
    attempts: dict[int, tuple[int, int, int, int]] = {}
    attempt_rows = db.execute(
        select(
            WebhookAttempt.endpoint_id,
            func.count(),
            func.sum(failed),
            func.sum(recent),
            func.sum(recent_failed),
        )
        .where(WebhookAttempt.organization_id == org, WebhookAttempt.endpoint_id.in_(ids))
        .group_by(WebhookAttempt.endpoint_id)
    )
    for endpoint_id, total, total_failed, day, day_failed in attempt_rows:
        attempts[endpoint_id] = (
            int(total or 0),
            int(total_failed or 0),
            int(day or 0),
            int(day_failed or 0),
        )
    stats = {}
    for i in ids:
        total, total_failed, day, day_failed = attempts.get(i, (0, 0, 0, 0))
        counts = by_status[i]
        stats[i] = WebhookStats(
            delivered=counts.get("delivered", 0),
            pending=counts.get("pending", 0),
            failed=counts.get("failed", 0),
            attempts_24h=day,
            failed_attempts_24h=day_failed,
            failure_rate_24h=round(day_failed / day, 4) if day else None,
            attempts=total,
            failed_attempts=total_failed,
            failure_rate=round(total_failed / total, 4) if total else None,
        )
    return stats
