"""SCIM Users mapped to Userdesk's users, through the same services as the console.

| SCIM | Userdesk |
|---|---|
| userName, emails[primary].value | email |
| name.givenName / name.familyName | first_name / last_name |
| externalId | external_id |
| active: false / true | disable (reason "Deprovisioned by <token>") / enable |
| DELETE | the lifecycle's delete (data kept) |
| enterprise department | the team of that name (see _department_team) |
| meta.created / lastModified / version | created_at / updated_at / version |

This module decides what to change; users.service and users.lifecycle change it (check,
audit with the token's name as actor, webhooks, sessions cut). It holds no rule of its own
but the mapping: a user banned or trashed by an admin stays so after `active: true`.
A token is not the system: it changes only users who hold no more than the provisioning
role, and the email (the way to a password reset) only of users who hold strictly less.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from scim2_models import Email, EnterpriseUser, Meta, Mutability, Name, PatchOp, Schema
from scim2_models import User as ScimUser
from scim2_models.exceptions import InvalidCursorException, InvalidFilterException
from sqlalchemy import ColumnElement, Row, func, inspect, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, object_session

from userdesk.access import admin
from userdesk.access import service as access
from userdesk.access.models import Team
from userdesk.access.rules import Actor, Grant, Permission, takeover_problem
from userdesk.audit import service as audit
from userdesk.db.engine import unindexed
from userdesk.db.paging import SortKey, encode_cursor, fetch_page
from userdesk.errors import (
    Conflict,
    DomainError,
    InvalidInput,
    NotFound,
    PermissionDenied,
    PreconditionFailed,
)
from userdesk.scim import cursors, filters
from userdesk.scim import extension as custom_fields
from userdesk.scim import settings as scim_settings
from userdesk.scim.tokens import provider_of
from userdesk.users import lifecycle
from userdesk.users import service as users
from userdesk.users.lifecycle import ActionInput
from userdesk.users.models import User
from userdesk.users.rules import Action, CreatedVia, UserStatus, normalize_email
from userdesk.users.schemas import UserCreate, UserUpdate

Resource = ScimUser[EnterpriseUser]
MAX_COUNT = 1000  # ServiceProviderConfig's filter.maxResults and pagination.maxPageSize
DEFAULT_COUNT = 100  # a page without a count (pagination.defaultPageSize)
EXTERNAL_ID_MAX = 255  # users.external_id and groups.external_id
DEPROVISIONED = "Deprovisioned by {provider}"
# sortBy, by lower-cased attribute path.
SORTS: dict[str, Any] = {
    "id": User.id,
    "username": User.email_normalized,
    "emails": User.email_normalized,
    "emails.value": User.email_normalized,
    "externalid": User.external_id,
    "name.givenname": User.first_name,
    "name.familyname": User.last_name,
    "meta.created": User.created_at,
    "meta.lastmodified": User.updated_at,
}
_SCHEMA_PREFIX = filters.USER_SCHEMA + ":"
# The User attributes Userdesk keeps (and sub-attributes), as /Schemas publishes them: an
# identity provider maps only these. Others are accepted in a request and not kept.
KEPT: dict[str, frozenset[str] | None] = {
    "userName": None,
    "name": frozenset({"givenName", "familyName"}),
    "emails": frozenset({"value", "type", "primary"}),
    "active": None,
}


def user_schema() -> Schema:
    """The User schema as Userdesk serves it: RFC 7643's, cut to the attributes it keeps."""
    schema = ScimUser.to_schema()
    kept = []
    for attribute in schema.attributes or []:
        if attribute.name not in KEPT:
            continue
        subs = KEPT[attribute.name]
        if attribute.name == "emails":
            # Derived from userName: a provider writes the email there.
            attribute.mutability = Mutability.read_only
        if subs is not None:
            attribute.sub_attributes = [
                sub for sub in attribute.sub_attributes or [] if sub.name in subs
            ]
        kept.append(attribute)
    schema.attributes = kept
    return schema


# What a list shows of each user (scim.users.resource_body, to_resource, the custom
# fields' values), its team's name as `department`: read as rows, not entities (50 users
# of a page: 0.9 ms instead of 2 ms, no identity map nor team entities to build).
LISTED = (
    User.id,
    User.organization_id,
    User.email,
    User.first_name,
    User.last_name,
    User.status,
    User.external_id,
    User.created_at,
    User.updated_at,
    User.version,
    User.team_id,
    User.attributes,
    Team.name.label("department"),
)
Shown = User | Row[Any]  # a user as an entity, or as a row of LISTED


def _listed(*where: Any) -> Any:
    """SELECT of LISTED (the users with their teams' names)."""
    return select(*LISTED).outerjoin(Team, Team.id == User.team_id).where(*where)


@dataclass(frozen=True)
class Page:
    total: int
    start_index: int
    users: list[Shown]


NEW_VERSION = 'W/"1"'  # the version_tag of a user just created


def version_tag(user: Shown) -> str:
    """The user's meta.version (and ETag): weak, from the version every change bumps."""
    return f'W/"{user.version}"'


def to_resource(user: Shown, *, location: str) -> Resource:
    """USER as a SCIM User (the enterprise department: the name of the user's team)."""
    department = _department(user)
    # The extension's field is named after its class (scim2-models).
    extension: dict[str, Any] = {}
    if department is not None:
        extension["EnterpriseUser"] = EnterpriseUser(department=department)
    return Resource(
        id=str(user.id),
        external_id=user.external_id,
        user_name=user.email,
        name=Name(given_name=user.first_name or None, family_name=user.last_name or None),
        emails=[Email(value=user.email, type=Email.Type.work, primary=True)],
        active=user.status in filters.ACTIVE_STATUSES,
        meta=Meta(
            resource_type="User",
            created=user.created_at,
            last_modified=user.updated_at,
            location=location,
            version=version_tag(user),
        ),
        **extension,
    )


def resource_body(user: Shown, *, location: str) -> dict[str, Any]:
    """to_resource(USER).model_dump() as a list response holds it (no attributes asked
    for), built directly: scim2-models takes ~0.5 ms a user (a page of 100 costs 50 ms);
    this, some µs. tests/scim/test_cursor_paging.py holds the two equal."""
    body: dict[str, Any] = {
        "schemas": [filters.USER_SCHEMA_URN],
        "id": str(user.id),
    }
    if user.external_id is not None:
        body["externalId"] = user.external_id
    meta = {
        "resourceType": "User",
        "created": _iso(user.created_at),
        "lastModified": _iso(user.updated_at),
        "location": location,
        "version": version_tag(user),
    }
    body["meta"] = {key: value for key, value in meta.items() if value is not None}
    body["userName"] = user.email
    name = {}
    if user.last_name:
        name["familyName"] = user.last_name
    if user.first_name:
        name["givenName"] = user.first_name
    if name:
        body["name"] = name
    body["active"] = user.status in filters.ACTIVE_STATUSES
    body["emails"] = [{"value": user.email, "type": "work", "primary": True}]
    department = _department(user)
    if department is not None:
        body["schemas"].append(filters.ENTERPRISE_SCHEMA_URN)
        body[filters.ENTERPRISE_SCHEMA_URN] = {"department": department}
    return body


def _iso(moment: Any) -> str | None:
    """MOMENT as pydantic writes a datetime (UTC as Z)."""
    if moment is None:
        return None
    text: str = moment.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _department(user: Shown) -> str | None:
    """The name of USER's team: read with a row of LISTED, else loaded with the user,
    else read (User.team is never loaded lazily)."""
    if user.team_id is None:
        return None
    if isinstance(user, Row):
        department: str | None = user.department
        return department
    if "team" not in inspect(user).unloaded:
        return user.team.name if user.team is not None else None
    session = object_session(user)
    team = session.get(Team, user.team_id) if session is not None else None
    return team.name if team is not None else None


def _visible(actor: Actor) -> list[Any]:
    """The users SCIM sees: the actor's organization within its reach, not deleted ones."""
    return [
        access.users_in_scope(actor, Permission.USERS_READ),
        User.status != UserStatus.DELETED.value,
    ]


def get_user(db: Session, *, actor: Actor, user_id: str, for_update: bool = False) -> User:
    """The user with SCIM id USER_ID (FOR_UPDATE: its row locked till the transaction ends,
    so that two writers with one If-Match take turns and the second sees the first's
    version: PostgreSQL; SQLite's writer already holds the whole database).

    Raises:
        PermissionDenied: the actor may not read users.
        NotFound: no such user within reach (or a deleted one).
    """
    access.require(actor, Permission.USERS_READ)
    found = None
    number = filters.scim_id(user_id)
    if number is not None:
        query = select(User).where(User.id == number, *_visible(actor))
        if for_update:
            query = query.with_for_update(of=User).execution_options(populate_existing=True)
        found = db.scalar(query)
    if found is None:
        raise NotFound(f"No user {user_id}.", code="user.not_found")
    return found


def search(
    db: Session,
    *,
    actor: Actor,
    filter_: str | None,
    start_index: int = 1,
    count: int | None = None,
    sort_by: str | None = None,
    descending: bool = False,
) -> Page:
    """One page of the users matching FILTER_ (index paging: START_INDEX is 1-based).

    The page's ids are read first, then its users by id: a filter's index that holds
    what the filter and SCIM's reach test (name.familyName's holds the status, migration
    0034) then answers the page and the count without a row read per match (a common
    prefix matches thousands: `sw "Mar"`, 50 ms with a row read each, a few without).

    Raises:
        PermissionDenied: the actor may not read users.
        InvalidFilterException: a bad filter, or a sortBy that is not a sortable attribute.
    """
    access.require(actor, Permission.USERS_READ)
    where, few = _where(db, actor, filter_)
    start_index = max(start_index, 1)
    count = MAX_COUNT if count is None else max(0, min(count, MAX_COUNT))
    total = None
    if count == 0 or start_index > 1:
        total = db.scalar(select(func.count()).select_from(User).where(*where)) or 0
        if count == 0 or start_index > total:  # past the end (and any OFFSET a database takes)
            return Page(total, start_index, [])
    column = _sort_column(sort_by)
    order: list[Any] = [] if column is None else [column.desc() if descending else column.asc()]
    by_id: Any = User.id
    if few and db.get_bind().dialect.name == "sqlite":
        by_id = unindexed(User.id)  # the filter's own index finds the few; then sorted
    order.append(by_id.desc() if descending and column is None else by_id)
    ids = select(User.id).where(*where).order_by(*order).offset(start_index - 1).limit(count)
    found: list[Shown]
    if few:  # the page's ids (from the filter's index) and their rows in one statement
        found = list(db.execute(_listed(User.id.in_(ids)).order_by(*order)))
    else:
        found = by_ids(db, db.scalars(ids).all())
    if total is None:  # the first page: when not full, it holds them all (a lookup's 0 or 1)
        total = len(found)
        if total == count:
            total = db.scalar(select(func.count()).select_from(User).where(*where)) or 0
    return Page(total, start_index, found)


def by_ids(db: Session, ids: Sequence[int]) -> list[Shown]:
    """The users of IDS (rows of LISTED), in that order."""
    if not ids:
        return []
    found = {row.id: row for row in db.execute(_listed(User.id.in_(ids)))}
    return [found[i] for i in ids if i in found]


def _where(db: Session, actor: Actor, filter_: str | None) -> tuple[list[Any], bool]:
    """The conditions of the users FILTER_ selects within the actor's reach (custom
    fields' attributes too, scim.extension), and whether they are few, found through an
    index of the filter's own (filters.users_few).

    Raises:
        InvalidFilterException: a bad filter.
    """
    where = _visible(actor)
    if not filter_:
        return where, False
    custom = (custom_fields.SCHEMA_URN, custom_fields.resolver(db, actor.organization_id))
    condition, few = filters.users_where_few(filter_, custom)
    return [*where, condition], few


@dataclass(frozen=True)
class CursorPage:
    total: int
    users: list[Shown]
    next_cursor: str | None
    previous_cursor: str | None


@dataclass(frozen=True)
class Cursoring:
    """What signs and reads the cursors of one request: the app's secret key, and the
    time (seconds) the request is read at."""

    secret_key: str
    now: float


def sort_key(sort_by: str | None, descending: bool) -> SortKey:
    """The key-set order of a cursor-paged list of users: SORT_BY's column then the id
    (externalId may be NULL: first ascending, last descending)."""
    column = _sort_column(sort_by)
    name = "id" if column is None else (sort_by or "").lower().removeprefix(_SCHEMA_PREFIX)
    columns = (User.id,) if column is None or column is User.id else (column, User.id)
    return SortKey(
        f"scim-users:{'-' if descending else ''}{name}",
        columns,
        descending=descending,
        nullable=column is User.external_id,
    )


def cursor_search(
    db: Session,
    *,
    actor: Actor,
    filter_: str | None,
    cursor: str,
    count: int | None,
    sort_by: str | None,
    descending: bool,
    cursoring: Cursoring,
) -> CursorPage:
    """One page of the users matching FILTER_ (cursor paging, RFC 9865): CURSOR empty for
    the first, else a nextCursor or previousCursor given out for the same list. Each page
    is a key-set read (userdesk.db.paging): the 10,000th costs what the first costs.

    Raises:
        PermissionDenied: the actor may not read users.
        InvalidFilterException: a bad filter or sortBy.
        InvalidCursorException, ExpiredCursorException: see scim.cursors.read.
    """
    access.require(actor, Permission.USERS_READ)
    where, few = _where(db, actor, filter_)
    key = sort_key(sort_by, descending)
    query = cursors.query_digest("Users", filter_ or "", key.name)
    rows, next_cursor, previous_cursor = page_by_cursor(
        db,
        columns=[User.id, *(c for c in key.columns if c is not User.id)],
        where=where,
        key=key,
        few=few,
        cursor=cursor,
        count=DEFAULT_COUNT if count is None else max(0, min(count, MAX_COUNT)),
        organization_id=actor.organization_id,
        query=query,
        cursoring=cursoring,
    )
    if not cursor and next_cursor is None and rows:  # one page holds them all
        total = len(rows)
    else:
        total = db.scalar(select(func.count()).select_from(User).where(*where)) or 0
    return CursorPage(total, by_ids(db, [row[0] for row in rows]), next_cursor, previous_cursor)


def page_by_cursor(
    db: Session,
    *,
    columns: Sequence[Any],
    where: Sequence[ColumnElement[bool]],
    key: SortKey,
    few: bool,
    cursor: str,
    count: int,
    organization_id: int,
    query: str,
    cursoring: Cursoring,
) -> tuple[Sequence[Sequence[Any]], str | None, str | None]:
    """COUNT rows of COLUMNS (the first the id, KEY's among them) after or before where
    CURSOR stands in KEY's order (the first COUNT with an empty CURSOR), and the cursors
    of the next and the previous page (None: no row there). The rows before a position
    are the first after it in the reverse order (a SortKey of its own), then turned.

    Raises:
        InvalidCursorException, ExpiredCursorException: see scim.cursors.read.
    """
    back = dataclasses.replace(key, name=f"{key.name}:back", descending=not key.descending)
    forward, position = True, None
    if cursor:
        found = cursors.read(
            cursoring.secret_key,
            cursor,
            organization_id=organization_id,
            query=query,
            now=cursoring.now,
        )
        forward, position = found.forward, found.key
    if count == 0:
        return [], None, None
    positions = [next(i for i, c in enumerate(columns) if c is k) for k in key.columns]

    def values(row: Sequence[Any]) -> list[Any]:
        return [row[i] for i in positions]

    def any_past(order: SortKey, row: Sequence[Any]) -> bool:
        """Whether a row follows ROW in ORDER."""
        found, _ = fetch_page(
            db, columns, where, order, cursor=encode_cursor(order, values(row)), limit=1, few=few
        )
        return bool(found)

    try:
        if forward:
            rows, more = fetch_page(db, columns, where, key, cursor=position, limit=count, few=few)
            after = more is not None
            before = bool(rows) and position is not None and any_past(back, rows[0])
        else:
            turned, more = fetch_page(
                db, columns, where, back, cursor=position, limit=count, few=few
            )
            rows = list(reversed(turned))
            before = more is not None
            after = bool(rows) and any_past(key, rows[-1])
    except InvalidInput:  # a signed position that the sort cannot read (never given out)
        raise InvalidCursorException(detail="the cursor does not fit this list") from None

    def signed(forward: bool, order: SortKey, row: Sequence[Any]) -> str:
        return cursors.sign(
            cursoring.secret_key,
            organization_id=organization_id,
            query=query,
            position=cursors.Position(forward, encode_cursor(order, values(row))),
            now=cursoring.now,
        )

    return (
        rows,
        signed(True, key, rows[-1]) if after else None,
        signed(False, back, rows[0]) if before else None,
    )


def _sort_column(sort_by: str | None) -> Any:
    if not sort_by:
        return None
    key = sort_by.lower().removeprefix(_SCHEMA_PREFIX)
    if key not in SORTS:
        raise InvalidFilterException(detail=f"sortBy '{sort_by}' is not sortable")
    return SORTS[key]


def _email_of(resource: Resource) -> str:
    return (resource.user_name or "").strip()


def create_user(
    db: Session,
    *,
    actor: Actor,
    resource: Resource,
    base_url: str,
    custom: dict[str, Any] | None = None,
) -> User:
    """A new active user from a SCIM User (created_via scim), with CUSTOM, the values of
    the custom fields' extension (scim.extension), if sent.

    Raises:
        PermissionDenied: the actor may not create users.
        InvalidInput: a bad userName (email) or name.
        Conflict: the email is taken in the organization.
    """
    name = resource.name or Name()
    email = _email_of(resource)
    check_external_id(resource.external_id)
    team, unmatched = _department_team(db, actor, resource)
    values = custom_fields.checked(db, actor.organization_id, custom) if custom else None
    try:
        with db.begin_nested():
            user, _ = users.add_user(
                db,
                actor=actor,
                data=UserCreate(
                    email=email,
                    first_name=name.given_name or "",
                    last_name=name.family_name or "",
                    created_via=CreatedVia.SCIM.value,
                    team_id=str(team.id) if isinstance(team, Team) else None,
                    attributes=values,
                ),
                base_url=base_url,
                external_id=resource.external_id,
            )
    except IntegrityError:
        # Two requests created the same email at once: the loser's check passed before
        # the winner's row was there, and the unique index refused its insert.
        raise Conflict(
            f"{email} is in the organization already.",
            code="user.email_taken",
            fields={"email": f"'{email}' is taken"},
        ) from None
    if unmatched is not None:
        _record_unmatched(db, actor, user, unmatched)
    if resource.active is False:
        _set_active(db, actor, user, active=False, provider=provider_of(actor), base_url=base_url)
    return user  # as add_user left it (and _set_active refreshed it): nothing to read back


def batchable(resource: Resource) -> bool:
    """Whether RESOURCE's user may be created with others at once (create_users): it
    names no department and is not created inactive (create_user then does more)."""
    if resource.active is False:
        return False
    if filters.ENTERPRISE_SCHEMA_URN not in (resource.schemas or ()):
        return True  # no extension (reading it costs more than the rest of the check)
    extension = resource[EnterpriseUser]
    return not (extension.department or "").strip() if extension is not None else True


def create_users(
    db: Session,
    *,
    actor: Actor,
    resources: Sequence[Resource | Exception],
    max_errors: int | None = None,
) -> list[int | Exception]:
    """New active users from many SCIM Users at once (each `batchable`), as create_user
    makes them one by one, in a few statements for them all (users.add_users): what became
    of each, in order, its id or the error create_user would have raised (a resource the
    caller refused already, an exception, stays refused in its place). After MAX_ERRORS
    errors the rest are neither checked nor created (the list is shorter).

    Raises:
        PermissionDenied: the actor may not create users.
        ValueError: a resource that is not `batchable`.
        IntegrityError: an email another transaction took meanwhile (the caller's
            savepoint rolls the batch back; create_user answers it one by one).
    """
    items: list[tuple[UserCreate, str | None] | Exception] = []
    for resource in resources:
        if isinstance(resource, Exception):
            items.append(resource)
            continue
        if not batchable(resource):
            raise ValueError("create_users takes batchable resources only")
        try:
            check_external_id(resource.external_id)
        except DomainError as error:
            items.append(error)
            continue
        name = resource.name or Name()
        data = UserCreate(
            email=_email_of(resource),
            first_name=name.given_name or "",
            last_name=name.family_name or "",
            created_via=CreatedVia.SCIM.value,
        )
        items.append((data, resource.external_id))
    return users.add_users(db, actor=actor, items=items, max_errors=max_errors)


Wanted = tuple[Actor, Resource, dict[str, Any] | None]  # create_user's actor, resource, custom


def create_each(
    db: Session, *, wanted: Sequence[Wanted], base_url: str
) -> list[Shown | DomainError]:
    """The users of WANTED (what independent requests ask create_user for: an actor, a
    SCIM User, its custom fields' values or None), each as create_user creates it alone, or
    the DomainError create_user raises for it: a failure is rolled back alone (a savepoint
    each). The plain users (`batchable`, no custom value) of one actor are created together
    (create_users, a few statements for them all), the others one by one; an email another
    transaction took meanwhile, or an actor who may not create users, runs that group one
    by one (each failing alone as it would).
    """
    found: list[Shown | DomainError | None] = [None] * len(wanted)
    together: dict[Actor, list[int]] = {}
    alone: list[int] = []
    for at, (actor, resource, custom) in enumerate(wanted):
        if custom is None and batchable(resource):
            together.setdefault(actor, []).append(at)
        else:
            alone.append(at)
    for actor, group in together.items():
        if len(group) == 1:
            alone.extend(group)
            continue
        try:
            with db.begin_nested():
                outcomes = create_users(db, actor=actor, resources=[wanted[at][1] for at in group])
        except (IntegrityError, DomainError):
            alone.extend(group)
            continue
        rows = iter(by_ids(db, [outcome for outcome in outcomes if isinstance(outcome, int)]))
        for at, outcome in zip(group, outcomes, strict=True):
            found[at] = outcome if isinstance(outcome, DomainError) else next(rows)
    for at in sorted(alone):
        actor, resource, custom = wanted[at]
        try:
            with db.begin_nested():
                found[at] = create_user(
                    db, actor=actor, resource=resource, base_url=base_url, custom=custom
                )
        except DomainError as error:
            found[at] = error
    return [outcome for outcome in found if outcome is not None]


class _Keep:
    """The team stays as it is (the resource names no department)."""


KEEP = _Keep()


def _department_team(
    db: Session, actor: Actor, resource: Resource
) -> tuple[Team | _Keep | None, str | None]:
    """The team RESOURCE's enterprise department puts its user in, and the department when it
    names no team (nor could one be made).

    - No department (or an empty one): KEEP, the team an admin gave stays.
    - The name of a team of the organization (exactly, else in any case): that team.
    - Another name: a new team of that name when the organization's setting "SCIM
      creates missing teams" is on (scim.settings; audited as team.created); else None,
      no team: the request still succeeds (an identity provider retries a failure
      forever), and the department is recorded in the audit (_record_unmatched).
    """
    extension = resource[EnterpriseUser]
    name = (extension.department or "").strip() if extension is not None else ""
    if not name:
        return KEEP, None
    org = actor.organization_id
    named = db.scalars(
        select(Team)
        .where(Team.organization_id == org, func.lower(Team.name) == name.lower())
        .order_by(Team.id)
    ).all()
    exact = [team for team in named if team.name == name]
    if exact or named:
        return (exact or named)[0], None
    if scim_settings.creates_teams(db, org):
        maker = dataclasses.replace(actor, grants=(Grant(frozenset({Permission.SETTINGS_MANAGE})),))
        try:
            with db.begin_nested():
                return admin.create_named(db, actor=maker, model=Team, name=name), None
        except DomainError:  # a name no team may have (too long), or made meanwhile
            pass
    return None, name


def _record_unmatched(db: Session, actor: Actor, user: User, department: str) -> None:
    audit.record(
        db,
        actor=actor,
        action="user.scim_department_unmatched",
        target_type="user",
        target_id=user.id,
        changes={"department": department[:200], "team": None},
    )


def _check_version(user: User, if_match: str | None) -> None:
    """Raises PreconditionFailed unless IF_MATCH (when sent) is the user's version."""
    if if_match is None or if_match.strip() == "*":
        return
    sent = [tag.strip() for tag in if_match.split(",")]
    if version_tag(user) not in sent and version_tag(user)[2:] not in sent:
        raise PreconditionFailed(
            f"{user.email} changed since version {if_match} (now {version_tag(user)}).",
            fields={"If-Match": f"{if_match} is not the current version"},
        )


def replace_user(
    db: Session,
    *,
    actor: Actor,
    user_id: str,
    resource: Resource,
    if_match: str | None,
    base_url: str,
    custom: dict[str, Any] | None = None,
) -> User:
    """Make the user what RESOURCE says (PUT); CUSTOM: the custom fields' values sent
    (scim.extension: those not sent stay).

    Raises:
        NotFound, PreconditionFailed (If-Match is stale), PermissionDenied, InvalidInput,
        Conflict: as users.update_user and users.lifecycle.apply raise them.
    """
    user = get_user(db, actor=actor, user_id=user_id, for_update=True)
    _check_version(user, if_match)
    return _apply(db, actor, user, resource, base_url, custom)


def patch_user(
    db: Session,
    *,
    actor: Actor,
    user_id: str,
    patch: PatchOp[Resource] | None,
    if_match: str | None,
    location: str,
    base_url: str,
    custom: list[tuple[str, str | None, Any]] | None = None,
) -> User:
    """Apply a SCIM PATCH (scim2-models applies the operations to the user as SCIM shows
    it; the outcome is then applied like a PUT). CUSTOM: the operations on the custom
    fields' extension (scim.extension.split_patch); PATCH None, there are only those.

    Raises:
        SCIMException: an operation that does not apply (no target, a bad value).
        NotFound, PreconditionFailed, PermissionDenied, InvalidInput, Conflict: as
            replace_user.
    """
    user = get_user(db, actor=actor, user_id=user_id, for_update=True)
    _check_version(user, if_match)
    resource = to_resource(user, location=location)
    values = custom_fields.patched(db, user, custom) if custom else {}
    if not (patch is not None and patch.patch(resource)) and not values:
        return user
    return _apply(db, actor, user, resource, base_url, values)


def delete_user(
    db: Session, *, actor: Actor, user_id: str, if_match: str | None, base_url: str
) -> None:
    """The lifecycle's delete: access removed, data kept; SCIM no longer shows the user.

    Raises:
        NotFound, PreconditionFailed, PermissionDenied, Conflict: as lifecycle.apply.
    """
    user = get_user(db, actor=actor, user_id=user_id, for_update=True)
    _check_version(user, if_match)
    access.require_not_weaker(db, actor, user)
    lifecycle.apply(
        db,
        actor=actor,
        user_id=user.id,
        action=Action.DELETE,
        given=ActionInput(
            confirm_email=user.email, reason=DEPROVISIONED.format(provider=provider_of(actor))
        ),
        base_url=base_url,
    )


def _require_over(db: Session, actor: Actor, user: User, *, email_change: bool) -> None:
    """A token changes only users who hold less than it does, and the email (the way to a
    password reset) only of users who hold strictly less (as access.require_stronger
    requires of an admin; a token is not the system).

    Raises:
        PermissionDenied: the user holds more than the provisioning role.
    """
    access.require_not_weaker(db, actor, user)
    if email_change:
        holder = access.actor_for_user(db, user)
        problem = takeover_problem(
            user.name, holder.permissions, actor.permissions, "have their email changed"
        )
        if problem:
            raise PermissionDenied(problem, code="permission_denied")


def _apply(
    db: Session,
    actor: Actor,
    user: User,
    resource: Resource,
    base_url: str,
    custom: dict[str, Any] | None = None,
) -> User:
    name = resource.name or Name()
    first, last = name.given_name or "", name.family_name or ""
    email = _email_of(resource)
    check_external_id(resource.external_id)
    change: dict[str, Any] = {}
    if first != user.first_name:
        change["first_name"] = first
    if last != user.last_name:
        change["last_name"] = last
    if normalize_email(email) != user.email_normalized:
        change["email"] = email
    team, unmatched = _department_team(db, actor, resource)
    if not isinstance(team, _Keep) and (team.id if team else None) != user.team_id:
        change["team_id"] = str(team.id) if team else None
    else:
        unmatched = None  # recorded once, when the user left the team for it
    external_id_changes = resource.external_id != user.external_id
    values = custom_fields.checked(db, actor.organization_id, custom) if custom else {}
    current = user.attributes or {}
    values = {key: value for key, value in values.items() if current.get(key) != value}
    if (
        change
        or values
        or external_id_changes
        or (
            resource.active is not None
            and resource.active != (user.status in filters.ACTIVE_STATUSES)
        )
    ):
        _require_over(db, actor, user, email_change="email" in change)
    if change or values or external_id_changes:
        users.update_user(
            db,
            actor=actor,
            user_id=user.id,
            data=UserUpdate(**change, attributes=values or None),
            version=user.version,
            base_url=base_url,
            set_external_id=True,
            external_id=resource.external_id,
        )
    if unmatched is not None:
        _record_unmatched(db, actor, user, unmatched)
    if resource.active is not None:
        _set_active(
            db, actor, user, active=resource.active, provider=provider_of(actor), base_url=base_url
        )
    db.refresh(user)
    return user


def check_external_id(external_id: str | None) -> None:
    """Raises InvalidInput: an externalId longer than the column holds."""
    if external_id is not None and len(external_id) > EXTERNAL_ID_MAX:
        raise InvalidInput(
            "The externalId is too long.",
            fields={"externalId": f"is longer than {EXTERNAL_ID_MAX} characters"},
        )


def _set_active(
    db: Session, actor: Actor, user: User, *, active: bool, provider: str, base_url: str
) -> None:
    """Disable or enable as the provider says; a ban or the trash (an admin's) stays."""
    status = UserStatus(user.status)
    if not active and status in (UserStatus.PENDING, UserStatus.ACTIVE):
        action, given = Action.DISABLE, ActionInput(reason=DEPROVISIONED.format(provider=provider))
    elif active and status is UserStatus.DISABLED:
        action, given = Action.ENABLE, ActionInput()
    else:
        return
    lifecycle.apply(db, actor=actor, user_id=user.id, action=action, given=given, base_url=base_url)
    db.refresh(user)
