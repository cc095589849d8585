"""A user's values for the organization's own fields: checked against its schema for a
writer, written to users.attributes with the index rows the query language reads, and
shown to a reader.

users.attributes (JSON) is what reads show: the API, exports, webhooks and the audit
log read it with no join. user_field_values holds the same values for the query
language's filters: `write` is the one place that changes either, always both.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import orjson
from sqlalchemy import Text, delete, insert, select, type_coerce, update
from sqlalchemy.orm import Session

from userdesk.access.rules import Actor
from userdesk.errors import InvalidInput
from userdesk.organizations.models import Organization
from userdesk.users.field_rules import FieldSpec, ValueProblem, check_value, index_values
from userdesk.users.models import User, UserField, UserFieldValue

ATTRIBUTES_MOST = 100  # keys in one write
_CACHE = "userdesk.user_fields"  # Session.info key: the schemas read in this unit of work
# Session.info keys: the organizations' user_fields_version as the caller's lookup read it
# (`note_version`), and the organizations whose fields this unit of work changed.
_VERSIONS = "userdesk.user_fields_versions"
_CHANGED = "userdesk.user_fields_changed"


class Party(StrEnum):
    """Who reads or writes values: an admin (a person with users.read / users.update),
    the user on their own page, or the system (an API key, the CLI, the worker)."""

    ADMIN = "admin"
    SELF = "self"
    SYSTEM = "system"


# Which parties each audience of a field (its visibility, its editable_by) lets in.
AUDIENCE_PARTIES: dict[str, frozenset[Party]] = {
    "system": frozenset({Party.SYSTEM}),
    "admins": frozenset({Party.SYSTEM, Party.ADMIN}),
    "self": frozenset({Party.SYSTEM, Party.ADMIN, Party.SELF}),
}


@dataclass(frozen=True)
class Schema:
    """An organization's fields (archived ones included), by key."""

    fields: Mapping[str, FieldSpec]

    @property
    def active(self) -> list[FieldSpec]:
        return [f for f in self.fields.values() if not f.archived]

    def by_id(self, field_id: int) -> FieldSpec | None:
        return next((f for f in self.fields.values() if f.id == field_id), None)


def spec_of(field: UserField) -> FieldSpec:
    return FieldSpec(
        id=field.id,
        key=field.key,
        label=field.label,
        type=field.type,
        options=tuple(field.options or ()),
        visibility=field.visibility,
        editable_by=field.editable_by,
        validation=dict(field.validation or {}),
        searchable=field.searchable,
        archived=field.archived_at is not None,
    )


# Each organization's fields as this process last read them, with the organization's
# user_fields_version they were read at: a request whose lookup read the same number
# reads no field (a Schema is never changed; a change makes a new one).
_HELD: dict[int, tuple[int, Schema]] = {}


def schema(db: Session, organization_id: int) -> Schema:
    """The organization's fields: those this process holds while the organization's
    user_fields_version is the one they were read at, else read (and held) again.

    The version is the one the request's caller lookup read (`note_version`), else read
    here, in the unit of work's transaction. A change in another process gives it a new
    number when it commits, so no unit of work that begins after that commit sees the old
    fields; a unit of work that changed them itself reads them, unheld (`forget_schema`).
    """
    cache: dict[int, Schema] = db.info.setdefault(_CACHE, {})
    found = cache.get(organization_id)
    if found is not None:
        return found
    if organization_id in db.info.get(_CHANGED, ()):
        found = cache[organization_id] = _read_schema(db, organization_id)
        return found
    noted = db.info.get(_VERSIONS, {}).get(organization_id)
    # Noted on the database read now: not when the reads have moved to a replica since.
    version = noted[0] if noted is not None and noted[1] is db.bind else None
    if version is None:
        version = db.scalar(
            select(Organization.user_fields_version).where(Organization.id == organization_id)
        )
    held = _HELD.get(organization_id)
    if held is not None and version is not None and held[0] == version:
        found = held[1]
    else:
        found = _read_schema(db, organization_id)
        if version is not None:
            _HELD[organization_id] = (version, found)
    cache[organization_id] = found
    return found


def _read_schema(db: Session, organization_id: int) -> Schema:
    rows = db.scalars(
        select(UserField)
        .where(UserField.organization_id == organization_id)
        .order_by(UserField.position, UserField.id)
    ).all()
    return Schema({f.key: spec_of(f) for f in rows})


def note_version(db: Session, organization_id: int, version: int) -> None:
    """Keep VERSION, the organization's user_fields_version that the caller's lookup read
    in this unit of work, for `schema` (which then reads nothing to check its fields
    while the reads stay on that database: not on a replica they move to)."""
    db.info.setdefault(_VERSIONS, {})[organization_id] = (version, db.bind)


def forget_schema(db: Session, organization_id: int) -> None:
    """Say that the organization's fields change in this unit of work: its
    user_fields_version becomes a new random number in the same transaction (every
    process reads them again once it commits), and this unit of work reads them afresh
    from now on. Random, not one more: a number a rolled-back change took (and some
    process may have seen within that transaction's connection) is not taken again."""
    db.execute(
        update(Organization)
        .where(Organization.id == organization_id)
        .values(user_fields_version=secrets.randbits(62) + 1)
        .execution_options(synchronize_session=False)
    )
    db.info.setdefault(_CHANGED, set()).add(organization_id)
    db.info.pop(_CACHE, None)


def party_of(actor: Actor) -> Party:
    """The party ACTOR is for users' values: the system for an API key or the system
    itself; else an admin (a person reaching the user through a permission, which the
    services check). A person on their own page (/me) is Party.SELF, which that page says."""
    if actor.api_key_id is not None or actor.user_id is None:
        return Party.SYSTEM
    return Party.ADMIN


def checked(
    db: Session,
    *,
    organization_id: int,
    values: Any,
    party: Party,
    field: str = "attributes",
) -> dict[str, Any]:
    """VALUES (a JSON object of field key to value; null clears) as the fields keep them,
    when PARTY may write each.

    Raises:
        InvalidInput: not an object, too many keys, an unknown or archived field, one
            PARTY may not edit, or a value the field does not take; each named as
            `attributes.<key>` with the value.
    """
    if not isinstance(values, dict):
        raise InvalidInput(
            "attributes is an object of field keys and values.",
            fields={field: "is not an object"},
        )
    if len(values) > ATTRIBUTES_MOST:
        raise InvalidInput(
            f"At most {ATTRIBUTES_MOST} attributes at once.",
            fields={field: f"has {len(values)} keys"},
        )
    found = schema(db, organization_id)
    problems: dict[str, str] = {}
    clean: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{field}.{key}" if isinstance(key, str) and len(key) <= 60 else field
        spec = found.fields.get(key) if isinstance(key, str) else None
        shown = _shown(value)
        if spec is None:
            known = ", ".join(f.key for f in found.active[:30]) or "none yet"
            problems[name] = f"{_shown(key)} is not a field of this organization ({known})"
        elif spec.archived:
            problems[name] = f"'{key}' is archived: restore it to write its values"
        elif party not in AUDIENCE_PARTIES[spec.editable_by]:
            problems[name] = f"'{key}' may not be edited by {_whom(party)}"
        elif value is None:
            clean[key] = None
        else:
            try:
                clean[key] = check_value(spec, value)
            except ValueProblem as problem:
                problems[name] = f"{shown} {problem}"
    if problems:
        first = next(iter(problems.items()))
        raise InvalidInput(f"{first[0]}: {first[1]}.", code="invalid_attributes", fields=problems)
    return clean


def _whom(party: Party) -> str:
    return {Party.ADMIN: "admins", Party.SELF: "the user", Party.SYSTEM: "the system"}[party]


def _shown(value: Any) -> str:
    text = repr(value) if not isinstance(value, str) else f"'{value}'"
    text = ascii(text)[1:-1] if "\x00" in text else text
    return text if len(text) <= 80 else text[:77] + "..."


def write(db: Session, user: User, changes: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Set CHANGES (checked: field key to value, None clearing it) on USER: its
    attributes and their index rows, together. Returns what moved, {key: {from, to}}."""
    if not changes:
        return {}
    found = schema(db, user.organization_id)
    before = dict(user.attributes or {})
    after = dict(before)
    moved: dict[str, dict[str, Any]] = {}
    for key, value in changes.items():
        old = before.get(key)
        if value is None:
            after.pop(key, None)
        else:
            after[key] = value
        if old != value:
            moved[key] = {"from": old, "to": value}
    if not moved:
        return {}
    user.attributes = after or None
    specs = [found.fields[key] for key in moved]
    db.flush()
    _reindex(db, user.organization_id, [(user.id, after)], specs)
    return moved


def rewrite(db: Session, organization_id: int, spec: FieldSpec, values: Mapping[int, Any]) -> None:
    """Set the field SPEC to VALUES (user id to value, None removing it) for those users,
    attributes and index rows together (a field's type change, its purge). The users'
    version does not move: the schema changed, not the user."""
    ids = list(values)
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        rows = db.execute(
            select(User.id, User.attributes).where(
                User.organization_id == organization_id, User.id.in_(chunk)
            )
        ).all()
        updates = []
        for user_id, current in rows:
            attrs = dict(current or {})
            if values[user_id] is None:
                attrs.pop(spec.key, None)
            else:
                attrs[spec.key] = values[user_id]
            updates.append((user_id, attrs))
        for user_id, attrs in updates:
            db.execute(
                update(User)
                .where(User.id == user_id)
                .values(attributes=attrs or None)
                .execution_options(synchronize_session=False)
            )
        _reindex(db, organization_id, updates, [spec])


def _reindex(
    db: Session,
    organization_id: int,
    users: Sequence[tuple[int, Mapping[str, Any]]],
    specs: Sequence[FieldSpec],
) -> None:
    """The index rows of SPECS for USERS ((id, attributes) each), made again."""
    user_ids = [user_id for user_id, _ in users]
    db.execute(
        delete(UserFieldValue).where(
            UserFieldValue.user_id.in_(user_ids),
            UserFieldValue.field_id.in_([s.id for s in specs]),
        )
    )
    rows = [
        {
            "organization_id": organization_id,
            "field_id": spec.id,
            "user_id": user_id,
            "text_value": text,
            "number_value": number,
            "date_value": day,
        }
        for user_id, attrs in users
        for spec in specs
        for text, number, day in index_values(spec, attrs.get(spec.key))
    ]
    if rows:
        db.execute(insert(UserFieldValue), rows)


def readable(
    db: Session, organization_id: int, values: Mapping[str, Any] | None, party: Party
) -> dict[str, Any]:
    """VALUES as PARTY sees them: the fields not archived whose visibility lets it in,
    in the schema's order."""
    if not values:
        return {}
    return _only(values, _keys_shown(schema(db, organization_id), party))


def _keys_shown(found: Schema, party: Party) -> list[str]:
    """The keys of FOUND's fields (not archived) whose visibility lets PARTY in, in order."""
    return [spec.key for spec in found.active if party in AUDIENCE_PARTIES[spec.visibility]]


def _only(values: Mapping[str, Any], keys: Sequence[str]) -> dict[str, Any]:
    return {key: values[key] for key in keys if key in values}


def attach(
    db: Session, organization_id: int, views: Iterable[dict[str, Any]], party: Party
) -> None:
    """Put `attributes` on each of VIEWS (users as shown, by their "id"), as PARTY sees
    them: one read of the users' attributes, none when the organization has no fields."""
    listed = list(views)
    if not listed:
        return
    keys = _keys_shown(schema(db, organization_id), party)
    ids = [int(view["id"]) for view in listed]
    stored: dict[int, Any] = (
        dict(
            db.execute(
                select(User.id, type_coerce(User.attributes, Text)).where(
                    User.organization_id == organization_id, User.id.in_(ids)
                )
            ).all()
        )
        if keys
        else {}
    )
    _put(listed, stored, keys)


def attach_stored(
    db: Session,
    organization_id: int,
    views: Iterable[dict[str, Any]],
    stored: Mapping[int, Any],
    party: Party,
) -> None:
    """Put `attributes` on each of VIEWS as PARTY sees them, from STORED (by user id, the
    users' attributes as the driver gives them, read with their rows: no statement)."""
    listed = list(views)
    keys = _keys_shown(schema(db, organization_id), party) if listed else []
    _put(listed, stored, keys)


def _put(views: list[dict[str, Any]], stored: Mapping[int, Any], keys: Sequence[str]) -> None:
    """Each of VIEWS its `attributes` of KEYS, from STORED: the JSON as the driver gives
    it (SQLite: text, decoded by orjson, a third of the json module's time; PostgreSQL:
    already a dict)."""
    if not keys:
        for view in views:
            view["attributes"] = {}
        return
    for view in views:
        values = stored.get(int(view["id"]))
        if isinstance(values, str | bytes):
            values = orjson.loads(values)
        view["attributes"] = _only(values, keys) if values else {}


def fields_for(db: Session, organization_id: int, party: Party) -> list[tuple[FieldSpec, bool]]:
    """The fields (not archived) PARTY is shown on a user's page, in the schema's order,
    each with whether PARTY may edit it: those its visibility lets PARTY see, and those
    PARTY may edit (an editor sees what it edits)."""
    shown: list[tuple[FieldSpec, bool]] = []
    for spec in schema(db, organization_id).active:
        editable = party in AUDIENCE_PARTIES[spec.editable_by]
        if editable or party in AUDIENCE_PARTIES[spec.visibility]:
            shown.append((spec, editable))
    return shown


def missing_required(
    db: Session,
    *,
    organization_id: int,
    values: Mapping[str, Any] | None,
    occasion: str,
    party: Party,
    field: str = "attributes",
) -> dict[str, str]:
    """The fields required on OCCASION ("invitation", "self": the user's own page) that
    PARTY may edit and VALUES (the user's values once written) leave empty, each named
    `<field>.<key>`; {} when none."""
    given = values or {}
    required = db.execute(
        select(UserField.key, UserField.required_on).where(
            UserField.organization_id == organization_id, UserField.archived_at.is_(None)
        )
    ).all()
    keys = {key for key, on in required if occasion in (on or [])}
    return {
        f"{field}.{spec.key}": f"'{spec.label}' is required"
        for spec in schema(db, organization_id).active
        if spec.key in keys
        and party in AUDIENCE_PARTIES[spec.editable_by]
        and given.get(spec.key) in (None, "", [])
    }
