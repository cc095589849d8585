"""The organization's custom user fields (users.fields) as a SCIM extension of User.

`urn:ietf:params:scim:schemas:extension:userdesk:2.0:User` lists the organization's
fields that are not archived and that the system may see (a SCIM token acts as the
system: users.attributes.Party.SYSTEM), one attribute each, named by the field's key:
/Schemas serves it and /ResourceTypes names it among User's schemaExtensions, when the
organization has such fields.

- Read: a user's values (as users.attributes.readable shows them to the system) under the
  extension's URN, the URN added to `schemas`.
- Write: on create, PUT and PATCH (`urn:…:User:plan` as a path, or the URN with an object
  of keys), checked and written by the same services as the API's `attributes`
  (users.attributes.checked, then users.service); a bad key or value is a 400
  invalidValue naming `urn:…:User:<key>` and the value. A PUT sets the fields its
  extension object holds (null clears one) and keeps the others: a provider mapping some
  fields does not clear those it does not know.
- Filter: `urn:…:User:plan eq "pro"` (eq ne gt ge lt le pr) is the query language's
  `plan:pro` (query.builder, the same index of values).

Nothing of HTTP: scim.resources splits a request's body, the /scim/v2 app adds the values
to what it answers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from scim2_models import Attribute, CaseExact, Mutability, Required, Returned, Schema, Uniqueness
from scim2_models.exceptions import InvalidFilterException
from scim2_models.path import CompareOperator
from sqlalchemy import ColumnElement, Row, and_, not_
from sqlalchemy.orm import Session

from userdesk.errors import InvalidInput
from userdesk.query import builder
from userdesk.query.rules import FieldTerm, HasTerm, Query
from userdesk.users import attributes
from userdesk.users.attributes import AUDIENCE_PARTIES, Party
from userdesk.users.field_rules import FieldSpec
from userdesk.users.models import User

SCHEMA_URN = "urn:ietf:params:scim:schemas:extension:userdesk:2.0:User"
_URN = SCHEMA_URN.lower()
PARTY = Party.SYSTEM  # who a SCIM token is for users' values
# A field's type as a SCIM attribute's (a date is a string like 2025-01-31: SCIM's
# dateTime is an instant, which a date is not).
_TYPES: dict[str, Attribute.Type] = {
    "text": Attribute.Type.string,
    "number": Attribute.Type.decimal,
    "boolean": Attribute.Type.boolean,
    "date": Attribute.Type.string,
    "choice": Attribute.Type.string,
    "choices": Attribute.Type.string,
    "email": Attribute.Type.string,
    "url": Attribute.Type.reference,
}
# SCIM's comparison operators as the query language's, on a custom field.
_OPS = {
    CompareOperator.eq: "=",
    CompareOperator.gt: ">",
    CompareOperator.ge: ">=",
    CompareOperator.lt: "<",
    CompareOperator.le: "<=",
}

Resolver = Callable[[str, CompareOperator | None, Any], ColumnElement[bool]]


def fields(db: Session, organization_id: int) -> list[FieldSpec]:
    """The fields the extension lists: not archived, visible to the system."""
    return [
        spec
        for spec in attributes.schema(db, organization_id).active
        if PARTY in AUDIENCE_PARTIES[spec.visibility]
    ]


def schema(db: Session, organization_id: int) -> Schema | None:
    """The extension's schema for the organization (None: it has no such field)."""
    listed = fields(db, organization_id)
    if not listed:
        return None
    return Schema(
        id=SCHEMA_URN,
        name="UserdeskUser",
        description="The organization's own user fields (Settings > User fields).",
        attributes=[_attribute(spec) for spec in listed],
    )


def _attribute(spec: FieldSpec) -> Attribute:
    writable = PARTY in AUDIENCE_PARTIES[spec.editable_by]
    described = spec.label + (" (a date like 2025-01-31)" if spec.type == "date" else "")
    return Attribute(
        name=spec.key,
        type=_TYPES[spec.type],
        multi_valued=spec.type == "choices",
        description=described,
        required=Required.false,
        canonical_values=list(spec.options) or None,
        case_exact=CaseExact.false,
        mutability=Mutability.read_write if writable else Mutability.read_only,
        returned=Returned.default,
        uniqueness=Uniqueness.none,
        reference_types=["external"] if spec.type == "url" else None,
    )


def values_of(db: Session, user: User | Row[Any]) -> dict[str, Any]:
    """USER's values as the extension shows them (empty: none)."""
    return attributes.readable(db, user.organization_id, user.attributes, PARTY)


def add_to(db: Session, body: dict[str, Any], user: User | Row[Any]) -> dict[str, Any]:
    """BODY (USER as a SCIM resource, dumped) with USER's values, if any."""
    found = values_of(db, user)
    if found:
        body.setdefault("schemas", []).append(SCHEMA_URN)
        body[SCHEMA_URN] = found
    return body


def shown(attributes_: Iterable[Any] | None, excluded: Iterable[Any] | None) -> bool:
    """Whether the extension is in a response asked for with these attributes and
    excludedAttributes (each a path, or text of paths separated by commas)."""

    def paths(given: Iterable[Any] | None) -> list[str]:
        if given is None:
            return []
        if isinstance(given, str):
            given = given.split(",")
        return [str(path).strip().lower() for path in given if str(path).strip()]

    if any(path == _URN for path in paths(excluded)):
        return False
    wanted = paths(attributes_)
    return not wanted or any(path.startswith(_URN) for path in wanted)


def _is_ours(path: Any) -> bool:
    return isinstance(path, str) and path.strip().lower().startswith(_URN)


def split_resource(body: Any) -> tuple[Any, dict[str, Any] | None]:
    """A User resource's body without the extension, and the extension's object (None:
    not sent).

    Raises:
        InvalidInput: the extension is not an object.
    """
    if not isinstance(body, dict):
        return body, None
    found: dict[str, Any] | None = None
    rest: dict[str, Any] = {}
    for key, value in body.items():
        if isinstance(key, str) and key.lower() == _URN:
            if value is not None and not isinstance(value, dict):
                raise InvalidInput(
                    f"{SCHEMA_URN} is an object of field keys and values.",
                    fields={SCHEMA_URN: "is not an object"},
                )
            found = {**(found or {}), **(value or {})}
        else:
            rest[key] = value
    schemas = rest.get("schemas")
    if isinstance(schemas, list):
        rest["schemas"] = [s for s in schemas if not (isinstance(s, str) and s.lower() == _URN)]
    return rest, found


def split_patch(body: Any) -> tuple[Any, list[tuple[str, str | None, Any]]]:
    """A PatchOp's body without its operations on the extension, and those as (op, key or
    None for the whole extension, value): `urn:…:User:plan` paths, the URN as a path, and
    the URN's object in the value of an operation without a path.

    Raises:
        InvalidInput: a path under the URN that names no key.
    """
    if not isinstance(body, dict):
        return body, []
    name = next((k for k in body if isinstance(k, str) and k.lower() == "operations"), None)
    operations = body.get(name) if name is not None else None
    if not isinstance(operations, list):
        return body, []
    ours: list[tuple[str, str | None, Any]] = []
    kept: list[Any] = []
    for operation in operations:
        if not isinstance(operation, dict):
            kept.append(operation)
            continue
        op = str(operation.get("op", "")).lower()
        path = operation.get("path")
        if isinstance(path, str) and _is_ours(path):
            ours.append((op, _key_of(path), operation.get("value")))
            continue
        value = operation.get("value")
        if path is None and isinstance(value, dict):
            rest, extension = split_resource(value)
            if extension is not None:
                ours.append((op, None, extension))
                if not rest:
                    continue
                operation = {**operation, "value": rest}
        kept.append(operation)
    return {**body, name: kept}, ours


def _key_of(path: str) -> str | None:
    rest = path.strip()[len(SCHEMA_URN) :]
    if not rest:
        return None
    if not rest.startswith(":") or not rest[1:]:
        raise InvalidInput(
            f"'{path[:120]}' is not a path of {SCHEMA_URN}: write {SCHEMA_URN}:<field key>.",
            fields={"path": f"'{path[:120]}' names no field"},
        )
    return rest[1:]


def patched(
    db: Session, user: User, operations: list[tuple[str, str | None, Any]]
) -> dict[str, Any]:
    """The changes (key to value, None clearing it) OPERATIONS (split_patch's) make to
    USER's values.

    Raises:
        InvalidInput: an operation other than add, replace or remove, or a value that is
            not an object where the whole extension is set.
    """
    changes: dict[str, Any] = {}
    for op, key, value in operations:
        if op == "remove":
            if key is None:
                changes.update(dict.fromkeys(values_of(db, user)))
            else:
                changes[key] = None
        elif op in ("add", "replace"):
            if key is not None:
                changes[key] = value
            elif isinstance(value, dict):
                changes.update(value)
            else:
                raise InvalidInput(
                    f"{SCHEMA_URN}: the value is an object of field keys and values.",
                    fields={SCHEMA_URN: "is not an object"},
                )
        else:
            raise InvalidInput(
                f"'{op[:20]}' is not a PATCH operation: add, replace or remove.",
                fields={"op": f"'{op[:20]}' is not add, replace or remove"},
            )
    return changes


def checked(db: Session, organization_id: int, values: dict[str, Any]) -> dict[str, Any]:
    """VALUES as users.attributes.checked keeps them (for the system), its problems named
    as SCIM paths (`urn:…:User:plan`).

    Raises:
        InvalidInput: an unknown, archived or read-only field, or a bad value.
    """
    try:
        return attributes.checked(
            db, organization_id=organization_id, values=values, party=PARTY, field=SCHEMA_URN
        )
    except InvalidInput as exc:
        named = {_scim_name(k): v for k, v in exc.fields.items()}
        first = next(iter(named.items()), (SCHEMA_URN, exc.message))
        raise InvalidInput(
            f"{first[0]} {first[1]}.", code="invalid_attributes", fields=named
        ) from None


def _scim_name(name: str) -> str:
    prefix = SCHEMA_URN + "."
    return SCHEMA_URN + ":" + name[len(prefix) :] if name.startswith(prefix) else name


def resolver(db: Session, organization_id: int, *, now: datetime | None = None) -> Resolver:
    """What a filter on the extension's attribute KEY means, as the query language's
    term on that field: `eq` is `key:value`, `gt` `key:>value`…, `pr` `has:key`, `ne`
    the negation of `eq`.

    Raises (when called):
        InvalidFilterException: a field the organization does not have (or the system
            may not see), an operator a custom field does not take (co, sw, ew), or a
            value of the wrong type.
    """
    moment = now or datetime.now(UTC)

    def condition(key: str, op: CompareOperator | None, value: Any) -> ColumnElement[bool]:
        path = f"{SCHEMA_URN}:{key}"
        if op is None:
            term: FieldTerm | HasTerm = HasTerm(key)
        elif op is CompareOperator.ne:
            return not_(condition(key, CompareOperator.eq, value))
        elif op not in _OPS:
            raise InvalidFilterException(
                detail=f"'{path} {op.value}': a custom field compares with eq ne gt ge lt le pr"
            )
        elif value is None or isinstance(value, dict | list):
            raise InvalidFilterException(detail=f"'{path} {op.value}': give a value")
        else:
            text = ("yes" if value else "no") if isinstance(value, bool) else str(value)
            term = FieldTerm(key, _OPS[op], (text,))
        try:
            found = builder.conditions(
                db,
                organization_id=organization_id,
                query=Query((term,)),
                now=moment,
                party=PARTY,
            )
        except InvalidInput as exc:
            raise InvalidFilterException(detail=f"{path}: {exc.message}") from None
        return and_(*found)

    return condition
