"""The event types a host product can subscribe to, which change makes each, and the JSON
schema of each one's body.

An event is named like the audit action it comes from (`user.disabled`), and carries the
user as GET /api/v1/users/{id} shows it after the change, who made it, why, and the
fields it moved (before and after). Most events map one to one from an audit action;
some actions tell of several events (an accepted invitation also activates the user and
verifies the address), and a few changes the audit log does not record (a confirmed
address, a churn level moved by the scoring) are told by their service directly, under
the same names (see webhooks.events).
"""

from __future__ import annotations

from collections.abc import Mapping
from copy import deepcopy
from typing import Any

from userdesk.errors import InvalidInput
from userdesk.users.schemas import UserRead

TEST = "webhook.test"

EVENT_TYPES: dict[str, str] = {
    "user.created": "A user was added (by an admin, the API, or their own registration).",
    "user.invited": "A user was invited (one by one, or by an import), as Not Activated.",
    "user.activated": "A Not Activated user became active (an admin's activate, an accepted "
    "invitation, a confirmed registration, a first password set through a link).",
    "user.updated": "A user's names, team, groups or email changed (an email once the new "
    "address is confirmed); `before` and `after` hold the changed fields.",
    "user.validated": "An admin validated the user.",
    "user.invalidated": "An admin withdrew the user's validation.",
    "user.disabled": "The user was disabled: they can no longer sign in (`reason` says why).",
    "user.enabled": "A disabled user was enabled again.",
    "user.banned": "The user was banned, until `until` (null: for good).",
    "user.unbanned": "The user's ban was lifted by an admin, or ran out.",
    "user.trashed": "The user was moved to the trash: they can no longer sign in.",
    "user.restored": "A trashed user was restored.",
    "user.deleted": "The user was deleted: they can no longer sign in (until reactivated).",
    "user.reactivated": "A deleted user was brought back, as Not Activated.",
    "user.email_verified": "The user's email address was verified.",
    "user.roles_changed": "The user's roles changed; `before` and `after` hold the roles.",
    "user.sessions_revoked": "Every session of the user was ended (by an admin, or by the "
    "user signing out everywhere else).",
    "invitation.sent": "An invitation was emailed to the user (`invitation` says which).",
    "invitation.resent": "An invitation was emailed again, with a new link and expiry.",
    "invitation.revoked": "An invitation was withdrawn: its link no longer works.",
    "invitation.accepted": "The user accepted their invitation and chose a password.",
    "user.churn_level_changed": "The churn scoring moved the user to another risk level; "
    "`before` and `after` hold the level (`churn`).",
    TEST: "A test event, sent to one endpoint on an admin's request.",
}

# The audit actions (on a user) that are the event of the same name.
_SAME_NAME = frozenset(
    {
        "user.created",
        "user.invited",
        "user.activated",
        "user.updated",
        "user.validated",
        "user.invalidated",
        "user.disabled",
        "user.enabled",
        "user.banned",
        "user.unbanned",
        "user.trashed",
        "user.restored",
        "user.deleted",
        "user.reactivated",
        "user.email_verified",
        "user.sessions_revoked",
        "invitation.resent",
        "invitation.revoked",
        "invitation.accepted",
        "user.churn_level_changed",
    }
)
# Audit actions (on a user) that are an event of another name.
_RENAMED = {
    "user.registered": "user.created",  # a registration creates a Not Activated user
    "user.imported": "user.invited",  # an imported user is Not Activated, invited
    "user.added_to_group": "user.updated",
    "user.sessions_ended": "user.sessions_revoked",  # the user, everywhere but here
}
# Actions that tell of no event of their own, only of what their changes show (a user
# activated, an address verified): a confirmed registration, a password set by link.
_CHANGES_ONLY = frozenset({"user.registration_confirmed", "user.password_reset"})
# Every action whose audit event may make a webhook event: any other costs nothing.
ACTIONS: frozenset[str] = _SAME_NAME | frozenset(_RENAMED) | _CHANGES_ONLY
# Fields of user.updated's changes that are no change of the user yet (a new email
# waits for its confirmation), or that go in an event of their own.
_NOT_UPDATES = frozenset({"pending_email", "roles"})


def _moved(changes: Mapping[str, Any], field: str) -> tuple[Any, Any] | None:
    """FIELD's (before, after) when CHANGES record it as {"from", "to"} and it moved."""
    change = changes.get(field)
    if isinstance(change, dict) and "to" in change and change.get("from") != change["to"]:
        return change.get("from"), change["to"]
    return None


def split_changes(changes: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The before and after of every field CHANGES (an audit event's) record as moved
    ({"from", "to"}); other entries (an email sent or not, an import's row) are not fields."""
    before, after = {}, {}
    for field in changes:
        if (moved := _moved(changes, field)) is not None:
            before[field], after[field] = moved
    return before, after


def event_types_for(action: str, changes: Mapping[str, Any]) -> list[str]:
    """The event types an action on a user tells of, from the action and its CHANGES (as
    the audit event records them), in the order they are sent.

    - user.updated is sent for names, team, groups or a confirmed email; a change of roles
      is user.roles_changed (an edit of both sends both).
    - user.invited (an invitation, an import) is followed by invitation.sent when the
      invitation was emailed; a reactivation emails one too.
    - A move from Not Activated to active is user.activated, and an address that became
      verified is user.email_verified, whatever action did it.
    """
    if action not in ACTIONS:
        return []
    if action == "user.registered" and changes.get("again"):
        return []  # a Not Activated account registering again: nothing changed for the host
    if action in ("user.updated", "user.added_to_group"):
        types = []
        if any(field not in _NOT_UPDATES for field in split_changes(changes)[0]):
            types.append("user.updated")
        if _moved(changes, "roles") is not None:
            types.append("user.roles_changed")
        return types
    primary = _RENAMED.get(action, action)
    types = [] if action in _CHANGES_ONLY else [primary]
    if primary == "user.invited" and changes.get("email_sent"):
        types.append("invitation.sent")
    if primary == "user.reactivated":
        types.append("invitation.sent")  # reactivating emails a fresh invitation
    status = _moved(changes, "status")
    if primary != "user.activated" and status is not None and status == ("pending", "active"):
        types.append("user.activated")
    verified = changes.get("email_verified")
    newly_verified = verified is True or _moved(changes, "email_verified") == (False, True)
    if primary != "user.email_verified" and newly_verified:
        types.append("user.email_verified")
    return types


def check_event_types(values: list[str]) -> list[str]:
    """VALUES, each once, in their order, when every one is an event type.

    Raises:
        InvalidInput: an unknown type (field event_types, naming it).
    """
    unknown = [value for value in values if value not in EVENT_TYPES]
    if unknown:
        raise InvalidInput(
            f"'{unknown[0]}' is not an event type.",
            fields={
                "event_types": f"'{unknown[0]}' is not one of: {', '.join(EVENT_TYPES)}",
            },
        )
    return list(dict.fromkeys(values))


def _inlined(schema: Any, defs: Mapping[str, Any]) -> Any:
    """SCHEMA with every local `$ref` to DEFS replaced by the definition itself."""
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inlined(defs[ref.removeprefix("#/$defs/")], defs)
        return {key: _inlined(value, defs) for key, value in schema.items() if key != "$defs"}
    if isinstance(schema, list):
        return [_inlined(item, defs) for item in schema]
    return schema


def _user_properties() -> tuple[dict[str, Any], list[str]]:
    schema = UserRead.model_json_schema()
    inlined = _inlined(schema, schema.get("$defs", {}))
    # An agent's availability is the state of the moment, not of the user: not in events.
    properties = {k: v for k, v in inlined["properties"].items() if k != "availability"}
    return properties, [name for name in inlined.get("required", []) if name in properties]


_NULLABLE_STRING = {"anyOf": [{"type": "string"}, {"type": "null"}]}
_NAMED = {
    "type": "object",
    "properties": {"id": {"type": "string"}, "name": {"type": "string"}},
    "required": ["id", "name"],
}
_ACTOR = {
    "type": "object",
    "description": "Who made the change: a user (signed in, maybe impersonated by an "
    "admin), an API key, or the system (the worker, the CLI, a ban running out).",
    "properties": {
        "type": {"enum": ["user", "api_key", "system"]},
        "id": {**_NULLABLE_STRING, "description": "The user's or API key's id; null: system."},
        "name": {"type": "string"},
        "impersonator": {"anyOf": [_NAMED, {"type": "null"}]},
    },
    "required": ["type", "id", "name", "impersonator"],
}
_FIELDS = {
    "type": "object",
    "description": "The fields the change moved, by name (team, groups and roles by name).",
    "additionalProperties": True,
}
_INVITATION = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "expires_at": {"type": "string", "format": "date-time"},
    },
    "required": ["id", "expires_at"],
}
# What some event types add to the data.
_EXTRAS: dict[str, dict[str, Any]] = {
    "user.banned": {
        "until": {
            "anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}],
            "description": "When the ban ends; null: a permanent ban.",
        }
    },
    **{
        kind: {"invitation": {"anyOf": [_INVITATION, {"type": "null"}]}}
        for kind in EVENT_TYPES
        if kind.startswith("invitation.")
    },
}


def _data_schema(event_type: str) -> dict[str, Any]:
    if event_type == TEST:
        return {
            "type": "object",
            "properties": {"endpoint_id": {"type": "string"}, "message": {"type": "string"}},
            "required": ["endpoint_id", "message"],
        }
    properties, required = _user_properties()
    extras = deepcopy(_EXTRAS.get(event_type, {}))
    properties |= {
        "actor": deepcopy(_ACTOR),
        "reason": {**_NULLABLE_STRING, "description": "Why, as the actor gave it."},
        "before": {**_FIELDS, "description": "The moved fields' values before the change."},
        "after": {**_FIELDS, "description": "The moved fields' values after the change."},
        **extras,
    }
    return {
        "type": "object",
        "description": "The user as GET /api/v1/users/{id} shows it after the change, and "
        "the change.",
        "properties": properties,
        "required": [*required, "actor", "reason", "before", "after", *extras],
    }


def event_schema(event_type: str) -> dict[str, Any]:
    """The JSON schema (2020-12, no `$ref`: usable as is in OpenAPI 3.1's `webhooks`) of
    the whole body of an EVENT_TYPE message.

    Raises:
        InvalidInput: an unknown event type.
    """
    check_event_types([event_type])
    return {
        "title": event_type,
        "description": EVENT_TYPES[event_type],
        "type": "object",
        "properties": {
            "type": {"const": event_type},
            "timestamp": {
                "type": "string",
                "format": "date-time",
                "description": "When the change was made (UTC).",
            },
            "data": _data_schema(event_type),
        },
        "required": ["type", "timestamp", "data"],
    }
