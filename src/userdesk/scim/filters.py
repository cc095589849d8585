"""SCIM filters (RFC 7644 §3.4.2.2) over the users table, as SQL.

scim2-models parses the filter; this module walks its tree into one WHERE clause. Each
attribute maps to a column, or to a constant (the one email is of type "work" and
primary), or to nothing stored (a User attribute Userdesk does not keep: never present).
An absent value (NULL, or an empty name) equals nothing: `eq`, `co`, `sw`, `ew`, `gt`, `ge`,
`lt`, `le` and `pr` are false on it and `ne` true, so `not` is plain negation.

`userName eq "..."` compares the lower-cased email with email_normalized, which the
(organization_id, email_normalized) unique index answers. A case-insensitive string is
compared lower-cased (`lower(column)`, in the C collation on PostgreSQL), and `sw` as a range
of that as well as the LIKE: `name.familyName sw "lee"` is read from the index on
(organization_id, last_name COLLATE NOCASE) on SQLite, (organization_id, lower(last_name)
COLLATE "C") on PostgreSQL (migration 0031; 0034 adds the status, so that SCIM's reach is
tested in the index too), `eq` too. The custom fields' extension (scim.extension) is
resolved by the query language's builder, given by the caller (users_where's CUSTOM). The enterprise
extension's `department` is the user's team's name.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from scim2_models import ScimFilter
from scim2_models.exceptions import InvalidFilterException
from scim2_models.path import (
    AttrPath,
    CompareOperator,
    Comparison,
    FilterNode,
    LogicalExpr,
    LogicalOperator,
    Not,
    Present,
    ValuePath,
)
from sqlalchemy import (
    ColumnElement,
    Integer,
    String,
    and_,
    false,
    func,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import KeyedColumnElement
from sqlalchemy.sql.functions import FunctionElement

from userdesk.access.models import Group, Team
from userdesk.users.models import User
from userdesk.users.rules import UserStatus

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:user"
ENTERPRISE_SCHEMA = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:user"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:group"
# As a resource's schemas list them.
USER_SCHEMA_URN = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE_SCHEMA_URN = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


@dataclass(frozen=True)
class Column:
    """A stored attribute. KIND: `ci` (string, compared case-insensitively), `lower` (a
    string stored lower-cased already), `ce` (case-exact string), `id`, `time`, `active`,
    `team` (the name of the team whose id the column holds, case-insensitively)."""

    expr: Any
    kind: str


@dataclass(frozen=True)
class Constant:
    """An attribute with the same value on every user."""

    value: Any


ABSENT = Constant(None)
# SCIM's `active`: the account is not disabled, banned, trashed or deleted.
ACTIVE_STATUSES = (UserStatus.PENDING.value, UserStatus.ACTIVE.value)
_EMAIL = Column(User.email_normalized, "lower")
_EMAIL_PARTS: dict[str | None, Column | Constant] = {
    None: _EMAIL,
    "value": _EMAIL,
    "type": Constant("work"),
    "primary": Constant(True),
    "display": ABSENT,
}
# The User schema's attributes Userdesk keeps, by lower-cased name (and sub-attribute).
_MAPPED: dict[tuple[str, str | None], Column | Constant] = {
    ("id", None): Column(User.id, "id"),
    ("username", None): _EMAIL,
    ("externalid", None): Column(User.external_id, "ce"),
    ("name", "givenname"): Column(User.first_name, "ci"),
    ("name", "familyname"): Column(User.last_name, "ci"),
    ("active", None): Column(User.status, "active"),
    ("meta", "created"): Column(User.created_at, "time"),
    ("meta", "lastmodified"): Column(User.updated_at, "time"),
    ("meta", "resourcetype"): Constant("User"),
    ("department", None): Column(User.team_id, "team"),
}
# Attributes of the User schema (RFC 7643 §4.1) and of the enterprise extension that
# Userdesk does not keep: a filter on them is valid and finds no value.
_UNKEPT = frozenset(
    {
        "displayname",
        "nickname",
        "profileurl",
        "title",
        "usertype",
        "preferredlanguage",
        "locale",
        "timezone",
        "password",
        "phonenumbers",
        "ims",
        "photos",
        "addresses",
        "groups",
        "entitlements",
        "roles",
        "x509certificates",
        "name",
        "meta",
        "employeenumber",
        "costcenter",
        "organization",
        "division",
        "manager",
    }
)


MAX_FILTER_LENGTH = 4096  # characters
MAX_FILTER_TERMS = 100  # comparisons, presences and value paths, all told
MAX_FILTER_DEPTH = 20  # nested and/or/not/[ ]
_BIGGEST_ID = 2**63 - 1


def scim_id(value: object) -> int | None:
    """The row id a SCIM id stands for, or None: ids are ASCII digits within a BIGINT
    ("²" is a digit to str.isdigit, not to int)."""
    if not isinstance(value, str) or not value.isascii() or not value.isdigit():
        return None
    number = int(value)
    return number if 0 < number <= _BIGGEST_ID else None


def parse(expression: str) -> FilterNode:
    """The tree of a filter.

    Raises:
        InvalidFilterException: the filter is not SCIM filter syntax, holds a NUL, or is
            longer, deeper or has more terms than the limits above.
    """
    if len(expression) > MAX_FILTER_LENGTH:
        raise InvalidFilterException(
            detail=f"the filter is longer than {MAX_FILTER_LENGTH} characters"
        )
    if "\x00" in expression:
        raise InvalidFilterException(detail="the filter holds a NUL character")
    try:
        tree = ScimFilter(expression).ast
    except RecursionError:
        raise InvalidFilterException(detail="the filter is nested too deeply") from None
    _check_size(tree)
    return tree


def _check_size(tree: FilterNode) -> None:
    terms = 0
    stack: list[tuple[FilterNode, int]] = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_FILTER_DEPTH:
            raise InvalidFilterException(
                detail=f"the filter is nested deeper than {MAX_FILTER_DEPTH} levels"
            )
        if isinstance(node, LogicalExpr):
            stack += [(term, depth + 1) for term in node.terms]
        elif isinstance(node, Not):
            stack.append((node.expr, depth + 1))
        elif isinstance(node, ValuePath):
            terms += 1
            stack.append((node.val_filter, depth + 1))
        else:
            terms += 1
        if terms > MAX_FILTER_TERMS:
            raise InvalidFilterException(
                detail=f"the filter has more than {MAX_FILTER_TERMS} comparisons"
            )


@dataclass(frozen=True)
class Custom:
    """An attribute of the custom fields' extension (scim.extension): the field's key."""

    key: str


# A custom field's condition: (key, operator or None for `pr`, value) -> WHERE clause.
CustomResolver = Callable[[str, CompareOperator | None, Any], ColumnElement[bool]]


@dataclass(frozen=True)
class Attributes:
    """What the attribute names of one resource type's filters stand for."""

    resource: str
    schemas: frozenset[str]
    mapped: dict[tuple[str, str | None], Column | Constant]
    # Attributes of the schema Userdesk does not keep: valid, and never present.
    unkept: frozenset[str]
    # Multi-valued attributes with value paths: their sub-attributes (None: the value).
    valued: dict[str, dict[str | None, Column | Constant]]
    # The custom fields' extension: its URN (lower-cased) and what a filter on one means.
    custom_schema: str | None = None
    custom: CustomResolver | None = None


USERS = Attributes(
    "User",
    frozenset({USER_SCHEMA, ENTERPRISE_SCHEMA}),
    _MAPPED,
    _UNKEPT,
    {"emails": _EMAIL_PARTS},
)
GROUPS = Attributes(
    "Group",
    frozenset({GROUP_SCHEMA}),
    {
        ("id", None): Column(Group.id, "id"),
        ("displayname", None): Column(Group.name, "ci"),
        ("meta", "created"): Column(Group.created_at, "time"),
        ("meta", "resourcetype"): Constant("Group"),
        ("externalid", None): Column(Group.external_id, "ce"),
    },
    frozenset({"meta"}),
    {},
)


def _users(custom: tuple[str, CustomResolver] | None) -> Attributes:
    """USERS, with the custom fields' extension (its URN, its resolver) when given."""
    if custom is None:
        return USERS
    urn = custom[0].lower()
    return dataclasses.replace(
        USERS, schemas=USERS.schemas | {urn}, custom_schema=urn, custom=custom[1]
    )


def users_where(
    expression: str, custom: tuple[str, CustomResolver] | None = None
) -> ColumnElement[bool]:
    """The WHERE clause of a SCIM filter over users (CUSTOM: the custom fields'
    extension URN and resolver, scim.extension).

    Raises:
        InvalidFilterException: bad syntax, an attribute the User schema does not have, or
            an operator or value its attribute cannot take.
    """
    return _node(parse(expression), _users(custom), None)


# Columns an index of their own finds a few users by (for eq; sw on the strings marked).
_SEEKABLE: dict[str, bool] = {
    "id": False,
    "email_normalized": True,
    "external_id": False,
    "last_name": True,
    "team_id": False,
}


def users_few(expression: str) -> bool:
    """Whether a filter over users selects few of them through an index of its own (an
    `eq` on an indexed attribute, a `sw` on userName or name.familyName, and of those
    joined by `and` one, by `or` all): its users are then found by that index and
    sorted, rather than sought along the sort's order.

    Raises:
        InvalidFilterException: as users_where.
    """
    return _few(parse(expression))


def users_where_few(
    expression: str, custom: tuple[str, CustomResolver] | None = None
) -> tuple[ColumnElement[bool], bool]:
    """users_where and users_few of EXPRESSION, parsed once.

    Raises:
        InvalidFilterException: as users_where.
    """
    tree = parse(expression)
    return _node(tree, _users(custom), None), _few(tree)


def _few(node: FilterNode) -> bool:
    if isinstance(node, LogicalExpr):
        found = [_few(term) for term in node.terms]
        return any(found) if node.op is LogicalOperator.and_ else all(found)
    if not isinstance(node, Comparison) or node.value is None:
        return False
    try:
        field = _field(node.attr_path, USERS, None)
    except InvalidFilterException:  # a custom field's too: its index lists, not sorts
        return False
    key = getattr(field.expr, "key", None) if isinstance(field, Column) else None
    if key not in _SEEKABLE:
        return False
    if node.op is CompareOperator.eq:
        return True
    return node.op is CompareOperator.sw and _SEEKABLE[key] and bool(node.value)


def groups_where(expression: str) -> ColumnElement[bool]:
    """The WHERE clause of a SCIM filter over groups (id, displayName, meta.created).

    Raises:
        InvalidFilterException: as users_where; a filter on members too (not supported).
    """
    return _node(parse(expression), GROUPS, None)


def _node(node: FilterNode, on: Attributes, within: str | None) -> ColumnElement[bool]:
    if isinstance(node, LogicalExpr):
        parts = [_node(term, on, within) for term in node.terms]
        return and_(*parts) if node.op is LogicalOperator.and_ else or_(*parts)
    if isinstance(node, Not):
        return not_(_node(node.expr, on, within))
    if isinstance(node, Present):
        found = _field(node.attr_path, on, within)
        if isinstance(found, Custom) and on.custom is not None:
            return on.custom(found.key, None, None)
        return _present(found)  # type: ignore[arg-type]
    if isinstance(node, Comparison):
        found = _field(node.attr_path, on, within)
        if isinstance(found, Custom) and on.custom is not None:
            return on.custom(found.key, node.op, node.value)
        return _compare(found, node.op, node.value, node)  # type: ignore[arg-type]
    if isinstance(node, ValuePath):
        if within is not None:
            raise InvalidFilterException(detail="a value path cannot nest another")
        attr = _attr(node.attr_path, on)
        if on.custom_schema is not None and (node.attr_path.uri or "").lower() == on.custom_schema:
            raise InvalidFilterException(detail=f"'{node.attr_path}' takes no value path")
        if attr not in on.valued or node.attr_path.sub_attr is not None:
            if (attr, None) in on.mapped or attr in on.unkept:
                return false()
            raise _unknown(str(node.attr_path), on)
        return _node(node.val_filter, on, attr)
    raise InvalidFilterException(detail=f"unsupported expression {node}")


def _attr(path: AttrPath, on: Attributes) -> str:
    if path.uri is not None and path.uri.lower() not in on.schemas:
        raise _unknown(str(path), on)
    return path.attr.lower()


def _unknown(name: str, on: Attributes) -> InvalidFilterException:
    return InvalidFilterException(detail=f"'{name}' is not an attribute of a {on.resource}")


def _field(path: AttrPath, on: Attributes, within: str | None) -> Column | Constant | Custom:
    """What PATH names: a column, a constant, ABSENT, or a custom field.

    Raises:
        InvalidFilterException: no such attribute of the resource.
    """
    attr = _attr(path, on)
    if on.custom_schema is not None and (path.uri or "").lower() == on.custom_schema:
        if within is not None or path.sub_attr is not None:
            raise _unknown(str(path), on)
        return Custom(path.attr)
    sub = path.sub_attr.lower() if path.sub_attr else None
    if within is not None:  # inside a value path: the names are its sub-attributes
        parts = on.valued[within]
        if sub is not None or attr not in parts:
            raise _unknown(f"{within}.{path}", on)
        return parts[attr]
    if attr in on.valued:
        if sub not in on.valued[attr]:
            raise _unknown(str(path), on)
        return on.valued[attr][sub]
    found = on.mapped.get((attr, sub))
    if found is not None:
        return found
    if attr in on.unkept:
        return ABSENT
    raise _unknown(str(path), on)


def _present(field: Column | Constant) -> ColumnElement[bool]:
    if isinstance(field, Constant):
        return true() if field.value is not None else false()
    if field.kind in ("ci", "ce", "lower"):
        return and_(field.expr.is_not(None), field.expr != "")
    if field.kind in ("id", "active"):
        return true()
    return field.expr.is_not(None)  # type: ignore[no-any-return]


class _Folded(FunctionElement[str]):
    """A string for a case-insensitive comparison with a lower-cased value: on SQLite
    `x COLLATE NOCASE` (ASCII letters folded, as SQLite's lower() folds them); on
    PostgreSQL `lower(x) COLLATE "C"`, so that a range of it (`sw`) holds exactly the
    strings that start with its bound, whatever the database's collation. Migration 0030
    indexes users' last_name in the same words on each."""

    type = String()
    inherit_cache = True


@compiles(_Folded)
def _folded_sqlite(element: _Folded, compiler: Any, **kw: Any) -> str:
    return f"{compiler.process(element.clauses, **kw)} COLLATE NOCASE"


@compiles(_Folded, "postgresql")
def _folded_postgresql(element: _Folded, compiler: Any, **kw: Any) -> str:
    return f'lower({compiler.process(element.clauses, **kw)}) COLLATE "C"'


def _after_prefix(prefix: str) -> str | None:
    """The least string greater than every string that starts with PREFIX (None: none)."""
    while prefix:
        following = ord(prefix[-1]) + 1
        if 0xD800 <= following <= 0xDFFF:  # no string holds a lone surrogate
            following = 0xE000
        if following <= 0x10FFFF:
            return prefix[:-1] + chr(following)
        prefix = prefix[:-1]
    return None


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _compare(
    field: Column | Constant, op: CompareOperator, value: Any, node: Comparison
) -> ColumnElement[bool]:
    if isinstance(field, Constant):
        return true() if _constant_matches(field.value, op, value) else false()
    if value is None:  # `eq null` is the attribute's absence (RFC 7644 §3.4.2.2)
        if op is CompareOperator.eq:
            return not_(_present(field))
        if op is CompareOperator.ne:
            return _present(field)
        raise InvalidFilterException(detail=f"'{node}': null compares with eq and ne only")
    if field.kind == "active":
        return _active(op, value, node)
    if field.kind == "id":
        return _id(field.expr, op, value, node)
    if field.kind == "time":
        return _time(field.expr, op, value, node)
    if not isinstance(value, str):
        raise InvalidFilterException(detail=f"'{node}': the value must be a string")
    if field.kind == "team":
        return _team(field.expr, op, value, node)
    column: Any = field.expr
    if field.kind == "ci":
        column, value = _Folded(column), value.lower()
    elif field.kind == "lower":
        value = value.lower()
    present = _present(field)
    if op is CompareOperator.eq:
        return and_(present, column == value)
    if op is CompareOperator.ne:
        return or_(not_(present), column != value)
    if op in (CompareOperator.co, CompareOperator.sw, CompareOperator.ew):
        escaped = _escape_like(value)
        pattern = {
            CompareOperator.co: f"%{escaped}%",
            CompareOperator.sw: f"{escaped}%",
            CompareOperator.ew: f"%{escaped}",
        }[op]
        if field.kind == "ce":
            # Case-exact: LIKE is case-insensitive on SQLite, so compare the text as well.
            matched = _case_exact_like(column, value, op)
        else:
            matched = column.like(pattern, escape="\\")
        if op is CompareOperator.sw and field.kind in ("ci", "lower") and value:
            # The range an index answers; the LIKE stays for what lower() leaves alike.
            bound = _after_prefix(value)
            within = [column >= value] + ([column < bound] if bound is not None else [])
            return and_(present, *within, matched)
        return and_(present, matched)
    return and_(present, _ordered(column, op, value))


def _team(team_id: Any, op: CompareOperator, value: str, node: Comparison) -> ColumnElement[bool]:
    """A comparison of the name of the user's team (none: absent), by the team ids it
    holds for."""
    named = _compare(Column(Team.name, "ci"), op, value, node)
    teams = team_id.in_(select(Team.id).where(named))
    if op is CompareOperator.ne:
        return or_(team_id.is_(None), teams)
    return teams  # type: ignore[no-any-return]


def _case_exact_like(column: Any, value: str, op: CompareOperator) -> ColumnElement[bool]:
    if op is CompareOperator.sw:
        return func.substr(column, 1, len(value)) == value
    if op is CompareOperator.ew:
        return and_(
            func.length(column) >= len(value),
            func.substr(column, func.length(column) - len(value) + 1) == value,
        )
    return _Position(column, value) > 0


class _Position(FunctionElement[int]):
    """Where a string first occurs in another (1-based; 0: nowhere), case-exact on both
    databases: SQLite's instr, PostgreSQL's strpos."""

    type = Integer()
    inherit_cache = True


@compiles(_Position)
def _position_sqlite(element: _Position, compiler: Any, **kw: Any) -> str:
    return f"instr({compiler.process(element.clauses, **kw)})"


@compiles(_Position, "postgresql")
def _position_postgresql(element: _Position, compiler: Any, **kw: Any) -> str:
    return f"strpos({compiler.process(element.clauses, **kw)})"


def _ordered(column: Any, op: CompareOperator, value: Any) -> ColumnElement[bool]:
    if op is CompareOperator.gt:
        return column > value  # type: ignore[no-any-return]
    if op is CompareOperator.ge:
        return column >= value  # type: ignore[no-any-return]
    if op is CompareOperator.lt:
        return column < value  # type: ignore[no-any-return]
    return column <= value  # type: ignore[no-any-return]


def _active(op: CompareOperator, value: Any, node: Comparison) -> ColumnElement[bool]:
    if isinstance(value, str) and value.lower() in ("true", "false"):
        value = value.lower() == "true"
    if not isinstance(value, bool) or op not in (CompareOperator.eq, CompareOperator.ne):
        raise InvalidFilterException(detail=f"'{node}': active compares with eq or ne to a boolean")
    is_active = User.status.in_(ACTIVE_STATUSES)
    wanted = value if op is CompareOperator.eq else not value
    return is_active if wanted else not_(is_active)


def _id(
    column: KeyedColumnElement[Any], op: CompareOperator, value: Any, node: Comparison
) -> ColumnElement[bool]:
    if op not in (CompareOperator.eq, CompareOperator.ne):
        raise InvalidFilterException(detail=f"'{node}': id compares with eq or ne")
    number = scim_id(value)
    if number is None:
        return false() if op is CompareOperator.eq else true()
    return column == number if op is CompareOperator.eq else column != number


def _time(column: Any, op: CompareOperator, value: Any, node: Comparison) -> ColumnElement[bool]:
    if op in (CompareOperator.co, CompareOperator.sw, CompareOperator.ew):
        raise InvalidFilterException(detail=f"'{node}': a dateTime takes eq ne gt ge lt le")
    moment = _utc(value) if isinstance(value, datetime) else _datetime(value, node)
    if op is CompareOperator.eq:
        return and_(column.is_not(None), column == moment)
    if op is CompareOperator.ne:
        return or_(column.is_(None), column != moment)
    return and_(column.is_not(None), _ordered(column, op, moment))


def _utc(moment: datetime) -> datetime:
    """MOMENT in UTC (naive: taken as UTC), as the columns hold it; SQLite compares the
    stored text, so an offset left on would compare the wrong instant."""
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def _datetime(value: Any, node: Comparison) -> datetime:
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            return _utc(moment)
    raise InvalidFilterException(detail=f"'{node}': {value!r} is not a dateTime")


def _constant_matches(constant: Any, op: CompareOperator, value: Any) -> bool:
    """A comparison on a value every user shares, decided here."""
    if constant is None:
        return op is CompareOperator.ne and value is not None
    if isinstance(constant, bool):
        if isinstance(value, str) and value.lower() in ("true", "false"):
            value = value.lower() == "true"
        if op is CompareOperator.eq:
            return constant is value
        if op is CompareOperator.ne:
            return constant is not value
        return False
    if not isinstance(value, str):
        return op is CompareOperator.ne
    have, want = str(constant).lower(), value.lower()
    return {
        CompareOperator.eq: have == want,
        CompareOperator.ne: have != want,
        CompareOperator.co: want in have,
        CompareOperator.sw: have.startswith(want),
        CompareOperator.ew: have.endswith(want),
        CompareOperator.gt: have > want,
        CompareOperator.ge: have >= want,
        CompareOperator.lt: have < want,
        CompareOperator.le: have <= want,
    }[op]
