"""Use cases on users: list, read, and create the organization's administrators."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    Row,
    ScalarSelect,
    Select,
    bindparam,
    delete,
    func,
    literal,
    select,
    union_all,
)
from sqlalchemy.orm import Session, selectinload

from userdesk.access import service as access
from userdesk.access.models import Group, Role, Team
from userdesk.access.rules import ADMINISTRATOR, Actor, Permission
from userdesk.audit import service as audit
from userdesk.auth.secrets import hash_password
from userdesk.db.base import utcnow
from userdesk.db.paging import SortKey, fetch_page
from userdesk.errors import InvalidInput, NotFound
from userdesk.query import builder
from userdesk.query.rules import Key, Query
from userdesk.users.models import User, UserGroup, UserRole
from userdesk.users.rules import CreatedVia, UserStatus, email_problem, normalize_email
from userdesk.users.schemas import (
    LIST_COLUMNS,
    UserCounts,
    UserPage,
    UserView,
    named,
    user_view,
)

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
PASSWORD_MIN_LENGTH = 8

SORTS = {
    key.name: key
    for field, columns, nullable in (
        ("name", (User.first_name, User.last_name, User.id), False),
        ("email", (User.email_normalized,), False),  # unique within an organization
        ("created", (User.created_at, User.id), False),
        ("seen", (User.last_seen_at, User.id), True),
    )
    for key in (
        SortKey(field, columns, nullable=nullable),
        SortKey(f"-{field}", columns, descending=True, nullable=nullable),
    )
}
COUNT_CAP = 10_000


def _sort_key(sort: str) -> SortKey:
    key = SORTS.get(sort)
    if key is None:
        allowed = ", ".join(SORTS)
        raise InvalidInput(
            f"Sort '{sort}' is not one of: {allowed}.",
            fields={"sort": f"'{sort}' is not one of: {allowed}"},
        )
    return key


def _with_links(query: Select[User]) -> Select[User]:
    return query.options(
        selectinload(User.team), selectinload(User.groups), selectinload(User.roles)
    )


def matching(
    db: Session, *, actor: Actor, query: Query, permission: str
) -> list[ColumnElement[bool]]:
    """The conditions selecting the users QUERY describes among those PERMISSION covers."""
    return [
        access.users_in_scope(actor, permission),
        *builder.conditions(db, organization_id=actor.organization_id, query=query, now=utcnow()),
    ]


def list_users(
    db: Session,
    *,
    actor: Actor,
    q: str = "",
    sort: str = "name",
    limit: int = DEFAULT_PAGE_SIZE,
    cursor: str | None = None,
) -> UserPage:
    """One page of the users matching Q that ACTOR may see, in SORT order, after CURSOR.

    Raises:
        PermissionDenied: the actor may not read users.
        InvalidInput: a bad query term, an unknown sort, a limit out of range, or a cursor
            not from this list.
    """
    access.require(actor, Permission.USERS_READ)
    key = _sort_key(sort)
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise InvalidInput(
            f"Limit {limit} is out of range.",
            fields={"limit": f"{limit} is not between 1 and {MAX_PAGE_SIZE}"},
        )
    where = matching(
        db, actor=actor, query=builder.parse_query(q), permission=Permission.USERS_READ
    )
    page_query: Select[Any] = select(*LIST_COLUMNS).where(*where)
    rows, next_cursor = fetch_page(db, page_query, key, cursor=cursor, limit=limit)
    return UserPage(items=_with_link_names(db, rows), next_cursor=next_cursor)


# The team, groups and roles of a page of users, in one statement built once.
_LINKS: CompoundSelect[Any] = union_all(
    select(literal("team"), literal(None), Team.id, Team.name).where(
        Team.id.in_(bindparam("team_ids", expanding=True))
    ),
    select(literal("group"), UserGroup.user_id, Group.id, Group.name)
    .join(Group, Group.id == UserGroup.group_id)
    .where(UserGroup.user_id.in_(bindparam("ids", expanding=True))),
    select(literal("role"), UserRole.user_id, Role.id, Role.name)
    .join(Role, Role.id == UserRole.role_id)
    .where(UserRole.user_id.in_(bindparam("ids", expanding=True))),
)


def _with_link_names(db: Session, rows: Sequence[Row[Any]]) -> list[UserView]:
    """The users of ROWS as shown, with the names of their team, groups and roles."""
    if not rows:
        return []
    team_ids = list({row.team_id for row in rows if row.team_id is not None})
    links = db.connection().execute(_LINKS, {"ids": [row.id for row in rows], "team_ids": team_ids})
    teams: dict[int, dict[str, str]] = {}
    groups: dict[int, list[dict[str, str]]] = {}
    roles: dict[int, list[dict[str, str]]] = {}
    for kind, user_id, link_id, name in sorted(links, key=lambda link: link[3]):
        if kind == "team":
            teams[link_id] = named(link_id, name)
        else:
            (groups if kind == "group" else roles).setdefault(user_id, []).append(
                named(link_id, name)
            )
    return [
        user_view(
            row,
            team=teams.get(row.team_id) if row.team_id is not None else None,
            groups=groups.get(row.id, []),
            roles=roles.get(row.id, []),
        )
        for row in rows
    ]


def count_users(db: Session, *, actor: Actor, q: str = "") -> UserCounts:
    """How many users match Q in each status, in all, and without a sign-in.

    The status term of Q is left out, so that every status can be counted. A count stops
    at COUNT_CAP: one that reaches it says "at least", it is never an estimate.

    Raises:
        PermissionDenied: the actor may not read users.
        InvalidInput: a bad query term.
    """
    access.require(actor, Permission.USERS_READ)
    query = builder.parse_query(q).without_key(Key.STATUS)
    where = matching(db, actor=actor, query=query, permission=Permission.USERS_READ)

    def up_to_cap(*extra: ColumnElement[bool]) -> ScalarSelect[int]:
        rows = select(literal(1)).where(*where, *extra).limit(COUNT_CAP + 1).subquery()
        return select(func.count()).select_from(rows).scalar_subquery()

    total = db.scalar(select(up_to_cap())) or 0
    if total <= COUNT_CAP:
        # Few enough to count exactly in one pass over them.
        never = User.last_login_at.is_(None)
        rows = db.execute(
            select(User.status, never, func.count()).where(*where).group_by(User.status, never)
        ).all()
        statuses = {s.value: 0 for s in UserStatus}
        for status, _, n in rows:
            statuses[status] += n
        return UserCounts.exact(total, statuses, sum(n for _, is_never, n in rows if is_never))
    # Otherwise each status (and "without login") up to the cap, in one statement.
    names = [s.value for s in UserStatus]
    counts = db.execute(
        select(
            *(up_to_cap(User.status == name) for name in names),
            up_to_cap(User.last_login_at.is_(None)),
        )
    ).one()
    return UserCounts.capped_at(
        COUNT_CAP, total, dict(zip(names, counts[:-1], strict=True)), counts[-1]
    )


def get_user(db: Session, *, actor: Actor, user_id: int) -> User:
    """A user ACTOR may read, with team, groups and roles loaded.

    Raises:
        PermissionDenied: the actor may not read users at all.
        NotFound: no such user in the actor's reach (outside it, users do not exist).
    """
    access.require(actor, Permission.USERS_READ)
    user: User | None = db.scalar(
        _with_links(
            select(User).where(
                User.id == user_id, access.users_in_scope(actor, Permission.USERS_READ)
            )
        )
    )
    if user is None:
        raise NotFound(f"No user {user_id}.", code="user.not_found")
    return user


def password_problem(password: str) -> str | None:
    """What is wrong with PASSWORD, or None."""
    if len(password) < PASSWORD_MIN_LENGTH:
        return f"must be at least {PASSWORD_MIN_LENGTH} characters"
    return None


def create_admin(
    db: Session,
    *,
    actor: Actor,
    email: str,
    password: str,
    first_name: str = "",
    last_name: str = "",
) -> tuple[User, bool]:
    """Create an active Administrator with EMAIL, or reset the password of the one there is.

    Returns the user and whether it was created.

    Raises:
        InvalidInput: a malformed email or a too short password.
    """
    problems = {}
    if problem := email_problem(email):
        problems["email"] = problem
    if problem := password_problem(password):
        problems["password"] = problem
    if problems:
        raise InvalidInput("The administrator's details are not valid.", fields=problems)
    now = utcnow()
    user = db.scalar(
        select(User).where(
            User.organization_id == actor.organization_id,
            User.email_normalized == normalize_email(email),
        )
    )
    created = user is None
    if user is None:
        user = User(
            organization_id=actor.organization_id,
            email=email.strip(),
            email_normalized=normalize_email(email),
            first_name=first_name.strip(),
            last_name=last_name.strip(),
            created_via=CreatedVia.ADMIN.value,
            email_verified_at=now,
            validated_at=now,
        )
        db.add(user)
    user.password_hash = hash_password(password)
    user.status = UserStatus.ACTIVE.value
    user.status_reason = None
    user.status_until = None
    db.flush()
    role = access.get_role_by_name(db, actor.organization_id, ADMINISTRATOR.name)
    _ensure_role(db, user, role)
    audit.record(
        db,
        actor=actor,
        action="user.created" if created else "user.password_reset",
        target_type="user",
        target_id=user.id,
        changes={"email": user.email, "roles": [role.name]} if created else {},
    )
    return user, created


def _ensure_role(db: Session, user: User, role: Role) -> None:
    db.execute(delete(UserRole).where(UserRole.user_id == user.id, UserRole.role_id == role.id))
    db.add(UserRole(organization_id=user.organization_id, user_id=user.id, role_id=role.id))
    db.flush()
