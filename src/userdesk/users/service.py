"""Use cases on users: list, read, and create the organization's administrators."""

from __future__ import annotations

from sqlalchemy import Select, delete, select
from sqlalchemy.orm import Session, selectinload

from userdesk.access import service as access
from userdesk.access.models import Role
from userdesk.access.rules import ADMINISTRATOR, Actor, Permission
from userdesk.audit import service as audit
from userdesk.auth.secrets import hash_password
from userdesk.db.base import utcnow
from userdesk.db.paging import SortKey, decode_cursor, encode_cursor
from userdesk.errors import InvalidInput, NotFound
from userdesk.users.models import User, UserRole
from userdesk.users.rules import CreatedVia, UserStatus, email_problem, normalize_email
from userdesk.users.schemas import UserPage, UserRead

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
PASSWORD_MIN_LENGTH = 8

SORTS = {
    key.name: key
    for key in (
        SortKey("name", (User.first_name, User.last_name, User.id)),
        SortKey("-name", (User.first_name, User.last_name, User.id), descending=True),
        SortKey("email", (User.email_normalized, User.id)),
        SortKey("-email", (User.email_normalized, User.id), descending=True),
        SortKey("created", (User.created_at, User.id)),
        SortKey("-created", (User.created_at, User.id), descending=True),
    )
}


def _with_links(query: Select[User]) -> Select[User]:
    return query.options(
        selectinload(User.team), selectinload(User.groups), selectinload(User.roles)
    )


def list_users(
    db: Session,
    *,
    actor: Actor,
    sort: str = "name",
    limit: int = DEFAULT_PAGE_SIZE,
    cursor: str | None = None,
) -> UserPage:
    """One page of the users ACTOR may see, in SORT order, after CURSOR.

    Raises:
        PermissionDenied: the actor may not read users.
        InvalidInput: an unknown sort, a limit out of range, or a cursor not from this list.
    """
    access.require(actor, Permission.USERS_READ)
    key = SORTS.get(sort)
    if key is None:
        allowed = ", ".join(SORTS)
        raise InvalidInput(
            f"Sort '{sort}' is not one of: {allowed}.",
            fields={"sort": f"'{sort}' is not one of: {allowed}"},
        )
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise InvalidInput(
            f"Limit {limit} is out of range.",
            fields={"limit": f"{limit} is not between 1 and {MAX_PAGE_SIZE}"},
        )
    query = select(User).where(access.users_in_scope(actor, Permission.USERS_READ))
    if cursor:
        query = query.where(key.after(decode_cursor(key, cursor)))
    query = _with_links(query.order_by(*key.order_by()).limit(limit + 1))
    users = list(db.scalars(query))
    next_cursor = None
    if len(users) > limit:
        users = users[:limit]
        last = users[-1]
        next_cursor = encode_cursor(key, [getattr(last, c.key) for c in key.columns])
    return UserPage(items=[UserRead.of(u) for u in users], next_cursor=next_cursor)


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
