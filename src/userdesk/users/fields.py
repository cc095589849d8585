"""Use cases on the organization's user profile schema: its fields, created, changed,
archived (values kept, hidden, not writable), restored and purged (values gone).

A field's values live on the users (users.attributes); a change of type (or of a choice
field's options) converts them, and is refused with how many would not convert unless
the caller says to drop those.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from userdesk.access import service as access
from userdesk.access.rules import Actor, Permission
from userdesk.audit import service as audit
from userdesk.db.base import utcnow
from userdesk.errors import Conflict, InvalidInput, NotFound
from userdesk.query.rules import FIELD_KEY, RESERVED_KEYS
from userdesk.users import attributes
from userdesk.users.field_rules import (
    FieldSpec,
    ValueProblem,
    convert,
    parse_date,
    pattern_problem,
)
from userdesk.users.field_schemas import (
    AUDIENCES,
    FIELD_TYPES,
    LABEL_MAX,
    OPTION_MAX,
    OPTIONS_MAX,
    REQUIRED_ON,
    FieldValidation,
    UserFieldCreate,
    UserFieldUpdate,
)
from userdesk.users.models import User, UserField, UserFieldValue
from userdesk.validation import text_problem

FIELDS_MOST = 100  # fields per organization, archived ones included
CHOICE_TYPES = ("choice", "choices")


def list_fields(db: Session, *, actor: Actor, archived: bool = True) -> list[UserField]:
    """The organization's fields in their order (ARCHIVED: archived ones too).

    Raises:
        PermissionDenied: the actor may not read users.
    """
    access.require(actor, Permission.USERS_READ)
    query = select(UserField).where(UserField.organization_id == actor.organization_id)
    if not archived:
        query = query.where(UserField.archived_at.is_(None))
    return list(db.scalars(query.order_by(UserField.position, UserField.id)))


def list_fields_to_manage(db: Session, *, actor: Actor) -> list[UserField]:
    """The organization's fields, archived ones too, as Settings > User fields lists them
    to who may change them.

    Raises:
        PermissionDenied: the actor may not manage settings (or read users).
    """
    access.require(actor, Permission.SETTINGS_MANAGE)
    return list_fields(db, actor=actor)


def get_field(db: Session, *, actor: Actor, field_id: int) -> UserField:
    """One field of the actor's organization.

    Raises:
        PermissionDenied: the actor may not read users.
        NotFound: no such field in the organization.
    """
    access.require(actor, Permission.USERS_READ)
    field = db.scalar(
        select(UserField).where(
            UserField.id == field_id, UserField.organization_id == actor.organization_id
        )
    )
    if field is None:
        raise NotFound(f"No user field {field_id}.", code="user_field.not_found")
    return field


def _managed(db: Session, actor: Actor, field_id: int) -> UserField:
    access.require(actor, Permission.SETTINGS_MANAGE)
    return get_field(db, actor=actor, field_id=field_id)


def create_field(db: Session, *, actor: Actor, data: UserFieldCreate) -> UserField:
    """Add a field to the organization's schema.

    Raises:
        PermissionDenied: the actor may not manage settings.
        InvalidInput: a bad or reserved key, label, type, options, audience or limits
            (each named).
        Conflict: the key is taken (by a field, archived or not), or the schema is full.
    """
    access.require(actor, Permission.SETTINGS_MANAGE)
    key = data.key
    problems: dict[str, str] = {}
    if not isinstance(key, str) or not FIELD_KEY.match(key):
        problems["key"] = (
            f"'{_short(key)}' is not a key: a lowercase letter, then up to 39 lowercase "
            "letters, digits or _"
        )
    elif key in RESERVED_KEYS:
        problems["key"] = f"'{key}' is a built-in filter of the query language"
    settings = _settings_problems(
        problems,
        type_=data.type,
        label=data.label,
        options=data.options,
        required_on=data.required_on,
        visibility=data.visibility,
        editable_by=data.editable_by,
        validation=data.validation,
        searchable=data.searchable,
    )
    if problems:
        raise InvalidInput("The field's settings are not valid.", fields=problems)
    organization_id = actor.organization_id
    taken = db.scalar(
        select(UserField.id).where(
            UserField.organization_id == organization_id, UserField.key == key
        )
    )
    if taken is not None:
        raise Conflict(
            f"The organization has a field '{key}' already (maybe archived).",
            code="user_field.key_taken",
            fields={"key": f"'{key}' is taken"},
        )
    count = db.scalar(select(func.count()).where(UserField.organization_id == organization_id))
    if (count or 0) >= FIELDS_MOST:
        raise Conflict(
            f"An organization has at most {FIELDS_MOST} fields (archived ones count).",
            code="user_field.too_many",
        )
    field = UserField(
        organization_id=organization_id,
        key=key,
        label=data.label.strip(),
        type=data.type,
        options=settings["options"],
        required_on=list(dict.fromkeys(data.required_on)),
        visibility=data.visibility,
        editable_by=data.editable_by,
        validation=settings["validation"],
        searchable=data.searchable,
        position=data.position,
    )
    try:
        with db.begin_nested():  # two requests at once: the second meets the unique key
            db.add(field)
            db.flush()
    except IntegrityError:
        raise Conflict(
            f"The organization has a field '{key}' already.",
            code="user_field.key_taken",
            fields={"key": f"'{key}' is taken"},
        ) from None
    attributes.forget_schema(db, field.organization_id)
    audit.record(
        db,
        actor=actor,
        action="user_field.created",
        target_type="user_field",
        target_id=field.id,
        changes={"name": field.label, "key": key, "type": field.type},
    )
    return field


def _short(value: Any) -> str:
    text = ascii(value)[1:-1] if isinstance(value, str) else repr(value)
    return text[:60]


def _settings_problems(
    problems: dict[str, str],
    *,
    type_: str,
    label: str,
    options: list[str] | None,
    required_on: list[str],
    visibility: str,
    editable_by: str,
    validation: FieldValidation,
    searchable: bool,
) -> dict[str, Any]:
    """Add to PROBLEMS what is wrong with these settings; the options and limits as kept."""
    if type_ not in FIELD_TYPES:
        problems["type"] = f"'{_short(type_)}' is not one of {', '.join(FIELD_TYPES)}"
    if problem := text_problem(label):
        problems["label"] = problem
    elif not label.strip() or len(label.strip()) > LABEL_MAX:
        problems["label"] = f"is empty or longer than {LABEL_MAX} characters"
    for name, value in (("visibility", visibility), ("editable_by", editable_by)):
        if value not in AUDIENCES:
            problems[name] = f"'{_short(value)}' is not one of {', '.join(AUDIENCES)}"
    for value in required_on:
        if value not in REQUIRED_ON:
            problems["required_on"] = f"'{_short(value)}' is not one of {', '.join(REQUIRED_ON)}"
    kept_options: list[str] | None = None
    if type_ in CHOICE_TYPES:
        kept_options = _options_kept(problems, options)
    elif options:
        problems["options"] = f"only a choice or choices field has options, not a {type_}"
    if searchable and type_ != "text":
        problems["searchable"] = "only a text field is searched as free text"
    return {"options": kept_options, "validation": _limits(problems, type_, validation)}


def _options_kept(problems: dict[str, str], options: list[str] | None) -> list[str] | None:
    if not options:
        problems["options"] = "a choice field needs at least one option"
        return None
    if len(options) > OPTIONS_MAX:
        problems["options"] = f"has more than {OPTIONS_MAX} options"
        return None
    kept: dict[str, str] = {}
    for option in options:
        text = option.strip() if isinstance(option, str) else ""
        if not text or len(text) > OPTION_MAX or text_problem(text) or "," in text:
            problems["options"] = (
                f"'{_short(option)}' is not an option: 1 to {OPTION_MAX} characters, no comma"
            )
            return None
        if text.lower() in kept:
            problems["options"] = f"'{text}' is there twice"
            return None
        kept[text.lower()] = text
    return list(kept.values())


def _limits(problems: dict[str, str], type_: str, validation: FieldValidation) -> dict[str, Any]:
    given = validation.model_dump(exclude_none=True)
    lengths = {"min_length", "max_length", "pattern"}
    ranges = {"min", "max"}
    allowed = lengths if type_ == "text" else ranges if type_ in ("number", "date") else set()
    for name in given:
        if name not in allowed:
            problems[f"validation.{name}"] = f"does not apply to a {type_} field"
    if (pattern := given.get("pattern")) is not None and (problem := pattern_problem(pattern)):
        problems["validation.pattern"] = problem
    low, high = given.get("min_length"), given.get("max_length")
    if low is not None and high is not None and low > high:
        problems["validation.min_length"] = f"{low} is more than max_length {high}"
    for name in ("min", "max"):
        value = given.get(name)
        if value is None:
            continue
        if type_ == "number" and not isinstance(value, int | float):
            problems[f"validation.{name}"] = f"'{_short(value)}' is not a number"
        if type_ == "date":
            try:
                parse_date(value)
            except ValueProblem:
                problems[f"validation.{name}"] = f"'{_short(value)}' is not a date like 2025-01-31"
    if (
        not any(k.startswith("validation.") for k in problems)
        and given.get("min") is not None
        and given.get("max") is not None
        and given["min"] > given["max"]
    ):
        problems["validation.min"] = f"{given['min']} is more than max {given['max']}"
    return given


def update_field(db: Session, *, actor: Actor, field_id: int, data: UserFieldUpdate) -> UserField:
    """Change a field's settings (not its key). A new type, fewer options or narrower
    limits convert the values there are: refused, with how many would not convert,
    unless DATA.drop_unconvertible (those are then removed, the rest converted).

    Raises:
        PermissionDenied: the actor may not manage settings.
        NotFound: no such field.
        InvalidInput: a bad setting (named).
        Conflict: values that would not convert, counted (code user_field.unconvertible).
    """
    field = _managed(db, actor, field_id)
    given = data.model_fields_set - {"drop_unconvertible"}
    before = _settings(field)
    type_ = data.type if data.type is not None else field.type
    options = data.options if "options" in given else field.options
    if type_ not in CHOICE_TYPES and "options" not in given:
        options = None
    problems: dict[str, str] = {}
    settings = _settings_problems(
        problems,
        type_=type_,
        label=data.label if data.label is not None else field.label,
        options=options,
        required_on=data.required_on if data.required_on is not None else field.required_on,
        visibility=data.visibility or field.visibility,
        editable_by=data.editable_by or field.editable_by,
        validation=data.validation
        if data.validation is not None
        else FieldValidation(**_limits_for(type_, field.validation or {})),
        searchable=data.searchable if data.searchable is not None else field.searchable,
    )
    if problems:
        raise InvalidInput("The field's settings are not valid.", fields=problems)
    old_spec = attributes.spec_of(field)
    if data.label is not None:
        field.label = data.label.strip()
    if data.required_on is not None:
        field.required_on = list(dict.fromkeys(data.required_on))
    for name in ("visibility", "editable_by", "searchable", "position"):
        if getattr(data, name) is not None:
            setattr(field, name, getattr(data, name))
    field.type = type_
    field.options = settings["options"]
    field.validation = settings["validation"]
    new_spec = attributes.spec_of(field)
    dropped = 0
    if _values_may_change(old_spec, new_spec):
        dropped = _convert_values(db, field, old_spec, new_spec, drop=data.drop_unconvertible)
    db.flush()
    attributes.forget_schema(db, field.organization_id)
    after = _settings(field)
    changes: dict[str, Any] = {"name": field.label} | {
        name: {"from": before[name], "to": after[name]}
        for name in after
        if before[name] != after[name]
    }
    if dropped:
        changes["values_dropped"] = dropped
    audit.record(
        db,
        actor=actor,
        action="user_field.updated",
        target_type="user_field",
        target_id=field.id,
        changes=changes,
    )
    return field


def _limits_for(type_: str, validation: dict[str, Any]) -> dict[str, Any]:
    """The limits kept through a change of type: those the new type takes."""
    if type_ == "text":
        return {k: v for k, v in validation.items() if k in ("min_length", "max_length", "pattern")}
    if type_ == "number":
        return {k: v for k, v in validation.items() if k in ("min", "max") and _is_number(v)}
    if type_ == "date":
        return {k: v for k, v in validation.items() if k in ("min", "max") and isinstance(v, str)}
    return {}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _settings(field: UserField) -> dict[str, Any]:
    return {
        "label": field.label,
        "type": field.type,
        "options": field.options,
        "required_on": list(field.required_on or []),
        "visibility": field.visibility,
        "editable_by": field.editable_by,
        "validation": dict(field.validation or {}),
        "searchable": field.searchable,
        "position": field.position,
    }


def _values_may_change(old: FieldSpec, new: FieldSpec) -> bool:
    return (old.type, old.options, old.validation) != (new.type, new.options, new.validation)


def _convert_values(
    db: Session, field: UserField, old: FieldSpec, new: FieldSpec, *, drop: bool
) -> int:
    """Convert the field's values to NEW; how many did not convert (then removed).

    Raises:
        Conflict: some would not convert and DROP is false; nothing changed.
    """
    held = _values(db, field)
    converted: dict[int, Any] = {}
    failed = 0
    example: tuple[Any, str] | None = None
    for user_id, value in held.items():
        try:
            converted[user_id] = convert(value, new)
        except ValueProblem as problem:
            failed += 1
            converted[user_id] = None
            example = example or (value, str(problem))
    if failed and not drop:
        value, why = example or (None, "")
        raise Conflict(
            f"{failed} of {len(held)} values of '{field.key}' would not convert "
            f"(such as {_short(value)}, which {why}). Send drop_unconvertible: true to "
            "drop them and convert the rest.",
            code="user_field.unconvertible",
            fields={"type": f"{failed} of {len(held)} values would not convert"},
        )
    changed = (
        converted
        if old.type != new.type  # the index holds it in another column, maybe
        else {u: v for u, v in converted.items() if v != held[u]}
    )
    if changed:
        attributes.rewrite(db, field.organization_id, new, changed)
        db.expire_all()
    return failed


def _values(db: Session, field: UserField) -> dict[int, Any]:
    """The field's value of each user holding one (found through the index of values)."""
    holders = select(UserFieldValue.user_id).where(UserFieldValue.field_id == field.id)
    rows = db.execute(
        select(User.id, User.attributes).where(
            User.organization_id == field.organization_id, User.id.in_(holders)
        )
    ).all()
    return {user_id: attrs[field.key] for user_id, attrs in rows if attrs and field.key in attrs}


def archive_field(db: Session, *, actor: Actor, field_id: int) -> UserField:
    """Archive a field: its values stay, hidden from reads and filters, refused on writes,
    until it is restored or purged.

    Raises:
        PermissionDenied: the actor may not manage settings.
        NotFound: no such field.
    """
    return _archived(db, actor, field_id, archived=True)


def restore_field(db: Session, *, actor: Actor, field_id: int) -> UserField:
    """Bring an archived field back, with its values.

    Raises:
        PermissionDenied: the actor may not manage settings.
        NotFound: no such field.
    """
    return _archived(db, actor, field_id, archived=False)


def _archived(db: Session, actor: Actor, field_id: int, *, archived: bool) -> UserField:
    field = _managed(db, actor, field_id)
    if (field.archived_at is not None) != archived:
        field.archived_at = utcnow() if archived else None
        db.flush()
        attributes.forget_schema(db, field.organization_id)
        audit.record(
            db,
            actor=actor,
            action="user_field.archived" if archived else "user_field.restored",
            target_type="user_field",
            target_id=field.id,
            changes={"name": field.label, "key": field.key},
        )
    return field


def purge_field(db: Session, *, actor: Actor, field_id: int) -> int:
    """Delete a field and every value of it, for good; how many users had one.

    Raises:
        PermissionDenied: the actor may not manage settings.
        NotFound: no such field.
    """
    field = _managed(db, actor, field_id)
    held = _values(db, field)
    spec = attributes.spec_of(field)
    if held:
        attributes.rewrite(db, field.organization_id, spec, dict.fromkeys(held))
    key, label = field.key, field.label
    db.delete(field)
    db.flush()
    db.expire_all()
    attributes.forget_schema(db, actor.organization_id)
    audit.record(
        db,
        actor=actor,
        action="user_field.purged",
        target_type="user_field",
        target_id=field_id,
        changes={"name": label, "key": key, "values_deleted": len(held)},
    )
    return len(held)
