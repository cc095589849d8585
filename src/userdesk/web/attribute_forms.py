"""Custom field values in HTML forms (console user page, invite wizard, /me).

A form sends each field as `attributes.<key>`: text, a number, a date, "yes"/"no", one
choice, or several (repeated, or comma-separated where one input holds them). This
module only decodes what the browser sent into the JSON-like values the service checks
(users.attributes.checked, which names the field and the value it refuses) and formats
stored values back into inputs; it holds no rule of its own.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from userdesk.users import attributes
from userdesk.users.field_rules import NO, YES, FieldSpec
from userdesk.users.models import User

PREFIX = "attributes."
Raw = str | list[str]


def decode(spec: FieldSpec, raw: Raw) -> Any:
    """RAW (what a form sent for the field SPEC) as a value to check: None when left
    empty; a number, a boolean or a list where RAW reads as one; else RAW itself, which
    the service then refuses with its words ("'abc' is not a number")."""
    if spec.type == "choices":
        items = raw if isinstance(raw, list) else raw.split(",")
        chosen = [item.strip() for item in items if item.strip()]
        return chosen or None
    text = (raw[-1] if raw else "") if isinstance(raw, list) else raw
    text = text.strip()
    if not text:
        return None
    if spec.type == "number":
        try:
            number = float(text)
        except ValueError:
            return text
        return int(number) if math.isfinite(number) and number.is_integer() else number
    if spec.type == "boolean":
        if text.lower() in YES:
            return True
        if text.lower() in NO:
            return False
    return text


def from_form(
    form: Mapping[str, Raw], specs: Iterable[FieldSpec], prefix: str = PREFIX
) -> tuple[dict[str, Any], dict[str, Raw]]:
    """The values FORM gives for SPECS (only the fields it holds an input for: a field
    not in the form stays as it is), decoded; and the raw ones, to show back."""
    values: dict[str, Any] = {}
    raws: dict[str, Raw] = {}
    for spec in specs:
        name = prefix + spec.key
        if name not in form:
            continue
        raw = form[name]
        raws[spec.key] = raw
        values[spec.key] = decode(spec, raw)
    return values, raws


def multi_form(form: Any) -> dict[str, Raw]:
    """A Starlette FormData as {name: value}, with repeated names (several choices) as
    lists."""
    return {
        name: [str(v) for v in form.getlist(name)]
        if len(form.getlist(name)) > 1 or name.endswith("[]")
        else str(form.get(name) or "")
        for name in form
    }


def shown_raw(spec: FieldSpec, value: Any) -> Raw:
    """A stored VALUE as the field's input holds it."""
    if value is None:
        return [] if spec.type == "choices" else ""
    if spec.type == "boolean":
        return "yes" if value else "no"
    if spec.type == "choices":
        return [str(v) for v in value] if isinstance(value, list) else [str(value)]
    if spec.type == "number" and isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


@dataclass(frozen=True)
class ShownField:
    """A custom field on a user's page: its value, whether the reader may edit it there,
    and what its input holds."""

    spec: FieldSpec
    value: Any
    editable: bool
    raw: Raw
    required: bool = False


def shown_fields(
    db: Session,
    user: User,
    party: attributes.Party,
    *,
    may_edit: bool,
    raws: Mapping[str, Raw] | None = None,
    required_on: str | None = None,
) -> list[ShownField]:
    """USER's custom fields as PARTY sees them (users.attributes.fields_for): editable
    where PARTY may edit the field and MAY_EDIT the user; inputs holding RAWS (a refused
    form's) or the stored values; REQUIRED_ON marks the fields required there."""
    stored = user.attributes or {}
    required = (
        attributes.missing_required(
            db,
            organization_id=user.organization_id,
            values={},
            occasion=required_on,
            party=party,
        )
        if required_on
        else {}
    )
    shown = []
    for spec, editable in attributes.fields_for(db, user.organization_id, party):
        value = stored.get(spec.key)
        raw = raws[spec.key] if raws is not None and spec.key in raws else shown_raw(spec, value)
        shown.append(
            ShownField(
                spec=spec,
                value=value,
                editable=editable and may_edit,
                raw=raw,
                required=f"attributes.{spec.key}" in required,
            )
        )
    return shown


def required_fields(
    db: Session, organization_id: int, party: attributes.Party, occasion: str
) -> list[FieldSpec]:
    """The fields required on OCCASION that PARTY fills (users.attributes.missing_required
    of nothing), in the schema's order: the invite wizard asks them per person."""
    missing = attributes.missing_required(
        db, organization_id=organization_id, values={}, occasion=occasion, party=party
    )
    return [
        spec
        for spec in attributes.schema(db, organization_id).active
        if f"attributes.{spec.key}" in missing
    ]


def per_row(form: Any, specs: Iterable[FieldSpec], rows: int) -> list[dict[str, Any]]:
    """The values of SPECS for each of ROWS rows of a form whose rows repeat each input
    (`attributes.<key>` once per row, in order), decoded; a value left empty is left out."""
    found: list[dict[str, Any]] = [{} for _ in range(rows)]
    for spec in specs:
        sent = [str(v) for v in form.getlist(PREFIX + spec.key)]
        for index, raw in enumerate(sent[:rows]):
            value = decode(spec, raw)
            if value is not None:
                found[index][spec.key] = value
    return found
