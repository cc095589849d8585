"""Writing webhook messages: one per event and endpoint that wants it, in the transaction
of the change, so that a refused or rolled-back change sends nothing (the worker delivers
them, see webhooks.delivery).

Every change the audit log records about a user goes through here (audit.service calls
`audited` and `audited_many` as it writes its events); the few changes it does not record
(an address confirmed by link, an accepted invitation, a churn level moved by the
scoring) call `user_changed` or `churn_levels_changed` themselves.

Cost without an endpoint: an action that tells of no event (most) costs a set lookup; one
that does costs one indexed query on webhook_endpoints per transaction and organization,
whose answer (the organization's enabled endpoints and the types they want) is kept in
the session's `info` for the rest of the transaction, and forgotten when an endpoint is
written through the session. An import's tens of thousands of audit events so cost one
query per transaction; with endpoints, the users are read and the messages written a
few statements per thousand.

Nothing here imports audit.service (which imports this module).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from itertools import islice
from typing import Any

import orjson
from sqlalchemy import event, select, true
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Mapper, Session, object_session

from userdesk.access.models import Group, Role, Team
from userdesk.access.rules import Actor
from userdesk.audit.models import AuditEvent
from userdesk.db import bulk
from userdesk.db.base import utcnow
from userdesk.invitations.models import Invitation
from userdesk.users import attributes
from userdesk.users.models import User, UserGroup, UserRole
from userdesk.users.rules import display_name
from userdesk.users.schemas import LIST_COLUMNS, UserView, named, row_views
from userdesk.webhooks import catalog
from userdesk.webhooks.models import WebhookEndpoint
from userdesk.webhooks.signing import new_message_uid

_CACHE = "userdesk.webhooks.subscribed"  # key in Session.info
_READ_AT_ONCE = 500  # users read a statement
_JSON = orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC
_MESSAGE_COLUMNS = ("uid", "endpoint_id", "event_type", "user_id", "body")

Subscribed = list[tuple[int, frozenset[str]]]  # (endpoint id, its types; empty: all)


def _subscribed(db: Session, organization_id: int) -> Subscribed:
    """The organization's enabled endpoints and the types each wants, read once per
    transaction (see the module's docstring)."""
    transaction = db.get_transaction()
    cached = db.info.get(_CACHE)
    if cached is None or cached[0] is not transaction:
        cached = (transaction, {})
        if transaction is not None:
            db.info[_CACHE] = cached
    by_organization: dict[int, Subscribed] = cached[1]
    found = by_organization.get(organization_id)
    if found is None:
        rows = db.execute(
            select(WebhookEndpoint.id, WebhookEndpoint.event_types).where(
                WebhookEndpoint.organization_id == organization_id,
                WebhookEndpoint.enabled == true(),
            )
        ).all()
        found = [(endpoint_id, frozenset(types or ())) for endpoint_id, types in rows]
        by_organization[organization_id] = found
    return found


def _forget_subscriptions(mapper: Mapper[Any], connection: Connection, target: Any) -> None:
    """An endpoint was written through a session: that session reads them again."""
    session = object_session(target)
    if session is not None:
        session.info.pop(_CACHE, None)


for _change in ("after_insert", "after_update", "after_delete"):
    event.listen(WebhookEndpoint, _change, _forget_subscriptions)


def _wanting(subscribed: Subscribed, event_type: str) -> list[int]:
    return [endpoint for endpoint, types in subscribed if not types or event_type in types]


def _body(event_type: str, at: datetime, data: Mapping[str, Any]) -> str:
    """The JSON sent, compact: {"type", "timestamp", "data"}."""
    return orjson.dumps({"type": event_type, "timestamp": at, "data": data}, option=_JSON).decode()


def _insert(
    db: Session, organization_id: int, at: datetime, rows: Sequence[tuple[Any, ...]]
) -> None:
    """Write ROWS (of _MESSAGE_COLUMNS) as messages due now, a few statements in all."""
    if not rows:
        return
    connection = db.connection()
    sql_time = bulk.sql_time(connection.dialect.name)
    now = sql_time(at)
    bulk.insert_rows(
        connection,
        "webhook_messages",
        _MESSAGE_COLUMNS,
        rows,
        same={
            "organization_id": organization_id,
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        },
    )


def enqueue(
    db: Session,
    *,
    organization_id: int,
    event_type: str,
    user_id: int | None,
    data: Mapping[str, Any],
    endpoint_ids: Sequence[int] | None = None,
) -> int:
    """Write one message of EVENT_TYPE with DATA for each enabled endpoint of the
    organization that wants the type, in the caller's transaction; how many were written.

    ENDPOINT_IDS: to those endpoints only (still enabled ones of the organization),
    whatever types they want (the test event an admin sends to one endpoint).
    """
    if endpoint_ids is not None:
        targets = list(
            db.scalars(
                select(WebhookEndpoint.id).where(
                    WebhookEndpoint.organization_id == organization_id,
                    WebhookEndpoint.id.in_(list(endpoint_ids)),
                    WebhookEndpoint.enabled == true(),
                )
            )
        )
    else:
        targets = _wanting(_subscribed(db, organization_id), event_type)
    if not targets:
        return 0
    at = utcnow()
    body = _body(event_type, at, data)
    rows = [(new_message_uid(), endpoint, event_type, user_id, body) for endpoint in targets]
    _insert(db, organization_id, at, rows)
    return len(rows)


def actor_data(actor: Actor) -> dict[str, Any]:
    """Who made a change, as an event's data says it."""
    if actor.user_id is not None:
        kind, actor_id = "user", str(actor.user_id)
    elif actor.api_key_id is not None:
        kind, actor_id = "api_key", str(actor.api_key_id)
    else:
        kind, actor_id = "system", None
    impersonator = (
        {"id": str(actor.impersonator_id), "name": actor.impersonator_name or ""}
        if actor.impersonator_id is not None
        else None
    )
    return {"type": kind, "id": actor_id, "name": actor.name, "impersonator": impersonator}


def the_user(user: User) -> Actor:
    """The user themselves as the actor of their own change (following a link)."""
    return Actor(
        user.organization_id,
        user.id,
        None,
        display_name(user.first_name, user.last_name, user.email),
    )


def audited(db: Session, audit_event: AuditEvent, actor: Actor) -> int:
    """The webhook messages AUDIT_EVENT (just recorded by ACTOR) tells of; how many."""
    if audit_event.target_type != "user" or audit_event.action not in catalog.ACTIONS:
        return 0
    if audit_event.target_id is None or not audit_event.target_id.isdigit():
        return 0
    return _tell(
        db,
        actor,
        audit_event.action,
        [(int(audit_event.target_id), audit_event.changes or {}, audit_event.reason)],
        audit_event.occurred_at,
    )


def audited_many(
    db: Session,
    *,
    actor: Actor,
    action: str,
    target_type: str,
    targets: Sequence[tuple[int, Mapping[str, Any]]],
    at: datetime,
) -> int:
    """The messages of audit events recorded together (audit.record_many); how many."""
    if target_type != "user" or action not in catalog.ACTIONS:
        return 0
    if not _subscribed(db, actor.organization_id):  # an import's many: not even listed
        return 0
    return _tell(db, actor, action, [(int(u), c, None) for u, c in targets], at)


def user_changed(
    db: Session,
    *,
    actor: Actor,
    action: str,
    user_id: int,
    changes: Mapping[str, Any],
    reason: str | None = None,
) -> int:
    """The messages of a change to a user that the audit log does not record, named and
    described (CHANGES: {"field": {"from", "to"}}) as an audit event would be."""
    return _tell(db, actor, action, [(user_id, changes, reason)], utcnow())


def churn_levels_changed(
    db: Session, *, organization_id: int, moved: Sequence[tuple[int, str | None, str]]
) -> int:
    """The messages of the churn levels a scoring moved ((user id, before, after) each),
    written in bulk; the system is the actor."""
    if not moved:
        return 0
    return _tell(
        db,
        Actor(organization_id, None, None, "system"),
        "user.churn_level_changed",
        [(user_id, {"churn": {"from": old, "to": new}}, None) for user_id, old, new in moved],
        utcnow(),
    )


Change = tuple[int, Mapping[str, Any], str | None]  # (user id, changes, reason)


def _tell(db: Session, actor: Actor, action: str, items: Sequence[Change], at: datetime) -> int:
    """Write the messages of ACTION by ACTOR on each of ITEMS, at AT."""
    organization_id = actor.organization_id
    subscribed = _subscribed(db, organization_id)
    if not subscribed:
        return 0
    wanted: dict[str, list[int]] = {}  # event type -> the endpoints that want it
    planned: list[tuple[int, Mapping[str, Any], str | None, str]] = []
    for user_id, changes, reason in items:
        for event_type in catalog.event_types_for(action, changes):
            if event_type not in wanted:
                wanted[event_type] = _wanting(subscribed, event_type)
            if wanted[event_type]:
                planned.append((user_id, changes, reason, event_type))
    if not planned:
        return 0
    user_ids = list(dict.fromkeys(user_id for user_id, *_ in planned))
    views = _views(db, organization_id, user_ids)
    invitations = _invitations(
        db,
        [user_id for user_id, _, _, kind in planned if kind.startswith("invitation.")],
    )
    who = actor_data(actor)
    rows: list[tuple[Any, ...]] = []
    for user_id, changes, reason, event_type in planned:
        view = views.get(user_id)
        if view is None:  # gone within the transaction: nothing to tell of it
            continue
        before, after = _moved_fields(event_type, changes)
        data: dict[str, Any] = {
            **view,
            "actor": who,
            "reason": reason,
            "before": before,
            "after": after,
        }
        if event_type == "user.banned":
            data["until"] = view["banned_until"]
        elif event_type.startswith("invitation."):
            data["invitation"] = _invitation_of(invitations, user_id, changes)
        body = _body(event_type, at, data)
        rows.extend(
            (new_message_uid(), endpoint, event_type, user_id, body)
            for endpoint in wanted[event_type]
        )
    _insert(db, organization_id, at, rows)
    return len(rows)


def _moved_fields(
    event_type: str, changes: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The before and after an event of EVENT_TYPE shows of CHANGES: user.updated the
    fields but roles (and an email not yet confirmed), user.roles_changed the roles,
    user.email_verified the flag; every other event all the fields moved."""
    if event_type == "user.email_verified":
        return {"email_verified": False}, {"email_verified": True}
    before, after = catalog.split_changes(changes)
    if event_type == "user.roles_changed":
        kept: Iterable[str] = ("roles",)
    elif event_type == "user.updated":
        kept = [field for field in before if field not in ("roles", "pending_email")]
    else:
        return before, after
    return (
        {field: before[field] for field in kept if field in before},
        {field: after[field] for field in kept if field in after},
    )


def _chunks(values: Sequence[int], size: int) -> Iterable[list[int]]:
    iterator = iter(values)
    while chunk := list(islice(iterator, size)):
        yield chunk


def _views(db: Session, organization_id: int, user_ids: Sequence[int]) -> dict[int, UserView]:
    """The users of USER_IDS as GET /api/v1/users/{id} shows them, by id, a few
    statements per _READ_AT_ONCE users."""
    views: dict[int, UserView] = {}
    for chunk in _chunks(user_ids, _READ_AT_ONCE):
        rows = db.execute(
            select(*LIST_COLUMNS).where(User.organization_id == organization_id, User.id.in_(chunk))
        ).all()
        team_ids = {row.team_id for row in rows if row.team_id is not None}
        teams = (
            {
                team_id: named(team_id, name)
                for team_id, name in db.execute(
                    select(Team.id, Team.name).where(Team.id.in_(team_ids))
                )
            }
            if team_ids
            else {}
        )
        groups: dict[int, list[dict[str, str]]] = {}
        for user_id, group_id, name in db.execute(
            select(UserGroup.user_id, Group.id, Group.name)
            .join(Group, Group.id == UserGroup.group_id)
            .where(UserGroup.user_id.in_(chunk))
            .order_by(Group.name, Group.id)
        ):
            groups.setdefault(user_id, []).append(named(group_id, name))
        roles: dict[int, list[dict[str, str]]] = {}
        for user_id, role_id, name in db.execute(
            select(UserRole.user_id, Role.id, Role.name)
            .join(Role, Role.id == UserRole.role_id)
            .where(UserRole.user_id.in_(chunk))
            .order_by(Role.name, Role.id)
        ):
            roles.setdefault(user_id, []).append(named(role_id, name))
        for view in row_views(rows, teams=teams, groups=groups, roles=roles):
            views[int(view["id"])] = view
    attributes.attach(db, organization_id, views.values(), attributes.Party.SYSTEM)
    return views


Invitations = dict[int, list[tuple[int, datetime]]]  # user id -> (id, expires_at), oldest first


def _invitations(db: Session, user_ids: Sequence[int]) -> Invitations:
    """The invitations of the users of USER_IDS, for the events about them."""
    found: Invitations = {}
    for chunk in _chunks(list(dict.fromkeys(user_ids)), _READ_AT_ONCE):
        for user_id, invitation_id, expires_at in db.execute(
            select(Invitation.user_id, Invitation.id, Invitation.expires_at)
            .where(Invitation.user_id.in_(chunk))
            .order_by(Invitation.id)
        ):
            found.setdefault(user_id, []).append((invitation_id, expires_at))
    return found


def _invitation_of(
    invitations: Invitations, user_id: int, changes: Mapping[str, Any]
) -> dict[str, Any] | None:
    """The invitation CHANGES name ("invitation": its id), else the user's latest."""
    mine = invitations.get(user_id, [])
    named_id = changes.get("invitation")
    for invitation_id, expires_at in reversed(mine):
        if named_id is None or str(invitation_id) == str(named_id):
            return {"id": str(invitation_id), "expires_at": expires_at}
    return None
