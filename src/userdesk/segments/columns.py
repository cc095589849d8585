"""The organization's custom fields shown as extra columns of the Users list.

An admin chooses them (the list's URL carries `columns=plan,seats`, so that a view is
linkable); the choice is kept per admin (users.list_columns, a display preference of their
own like their color scheme) and saved with a segment (segments.columns). The list reads
users' attributes only when a column is chosen; the console's export writes the same
columns. A cell shows a value as its field's type says (`cell_text`, `export_cell`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from userdesk.access import service as access
from userdesk.access.rules import Actor, Permission
from userdesk.errors import InvalidInput
from userdesk.users import attributes
from userdesk.users.attributes import AUDIENCE_PARTIES
from userdesk.users.field_rules import FieldSpec
from userdesk.users.models import User

COLUMNS_MOST = 20  # extra columns a view shows
LIST_JOIN = ", "  # several choices in a cell of the list
EXPORT_JOIN = ";"  # several choices in a cell of an export (as the import splits them)


def parse_keys(text: str | None) -> list[str]:
    """The keys of `columns=plan,seats` (spaces and empty items ignored, duplicates once)."""
    if not text:
        return []
    return list(dict.fromkeys(k.strip().lower() for k in text.split(",") if k.strip()))


def visible_fields(db: Session, *, actor: Actor) -> list[FieldSpec]:
    """The fields ACTOR may show as columns: not archived, visible to their party, in the
    schema's order.

    Raises:
        PermissionDenied: the actor may not read users.
    """
    access.require(actor, Permission.USERS_READ)
    party = attributes.party_of(actor)
    found = attributes.schema(db, actor.organization_id)
    return [f for f in found.active if party in AUDIENCE_PARTIES[f.visibility]]


def chosen(
    db: Session, *, actor: Actor, keys: Sequence[str], strict: bool = True
) -> list[FieldSpec]:
    """The fields KEYS name, in their order. STRICT: a key that is no field ACTOR sees is
    refused; else (a choice saved before a field was archived) it is left out.

    Raises:
        PermissionDenied: the actor may not read users.
        InvalidInput: (STRICT) an unknown key, or more than COLUMNS_MOST, named under
            `columns`.
    """
    if not keys:
        return []
    by_key = {f.key: f for f in visible_fields(db, actor=actor)}
    if strict:
        if len(keys) > COLUMNS_MOST:
            message = f"At most {COLUMNS_MOST} columns; {len(keys)} were chosen."
            raise InvalidInput(message, code="invalid_columns", fields={"columns": message})
        unknown = [k for k in keys if k not in by_key]
        if unknown:
            known = ", ".join(list(by_key)[:30]) or "none yet"
            message = (
                f"'{unknown[0][:60]}' is not a field to show as a column (the fields: {known})."
            )
            raise InvalidInput(message, code="invalid_columns", fields={"columns": message})
    return [by_key[k] for k in keys if k in by_key][:COLUMNS_MOST]


def saved_keys(db: Session, *, actor: Actor) -> list[str]:
    """The columns ACTOR chose last (none for an API key or the system)."""
    if actor.user_id is None:
        return []
    keys = db.scalar(select(User.list_columns).where(User.id == actor.user_id))
    return [k for k in keys or [] if isinstance(k, str)]


def choose(db: Session, *, actor: Actor, keys: Sequence[str]) -> list[FieldSpec]:
    """Keep KEYS as the columns ACTOR's Users list shows. A display preference of their
    own, like a color scheme: it changes nothing anyone else sees, so it is not audited
    and does not bump their version.

    Raises:
        PermissionDenied: the actor may not read users, or is no person (an API key).
        InvalidInput: an unknown key, or too many (named under `columns`).
    """
    fields = chosen(db, actor=actor, keys=keys)
    if actor.user_id is None:
        raise InvalidInput(
            "Only a person keeps a choice of columns.",
            code="invalid_columns",
            fields={"columns": "an API key has no list of its own"},
        )
    db.execute(
        update(User)
        .where(User.id == actor.user_id, User.organization_id == actor.organization_id)
        .values(list_columns=[f.key for f in fields] or None)
        .execution_options(synchronize_session=False)
    )
    return fields


def _number(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def cell_text(spec: FieldSpec, value: Any) -> str:
    """VALUE (as users.attributes keeps it) as the list shows it: "" when none, yes/no
    as Yes or No, several choices joined with ", ", the rest as text (dates ISO)."""
    if value is None:
        return ""
    if spec.type == "boolean":
        return "Yes" if value else "No"
    if spec.type == "number":
        return _number(value)
    if isinstance(value, list):
        return LIST_JOIN.join(str(v) for v in value)
    return str(value)


def export_cell(spec: FieldSpec, value: Any) -> str:
    """VALUE as an export writes it, before quoting: yes/no as the built-in flags are,
    several choices joined with ";" (what the import splits), dates ISO."""
    if value is None:
        return ""
    if spec.type == "boolean":
        return "yes" if value else "no"
    if spec.type == "number":
        return _number(value)
    if isinstance(value, list):
        return EXPORT_JOIN.join(str(v) for v in value)
    return str(value)


def header_names(fields: Iterable[FieldSpec], taken: Iterable[str]) -> list[str]:
    """Each field's column name in an export: its key, or `attributes.<key>` where the
    key is a built-in column's name (TAKEN)."""
    built_in = set(taken)
    return [f"attributes.{f.key}" if f.key in built_in else f.key for f in fields]
