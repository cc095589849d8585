"""SCIM Users mapped to Userdesk's users, through the same services as the console.

| SCIM | Userdesk |
|---|---|
| userName, emails[primary].value | email |
| name.givenName / name.familyName | first_name / last_name |
| externalId | external_id |
| active: false / true | disable (reason "Deprovisioned by <token>") / enable |
| DELETE | the lifecycle's delete (data kept) |
| meta.created / lastModified / version | created_at / updated_at / version |

This module decides what to change; users.service and users.lifecycle change it (check,
audit with the token's name as actor, webhooks, sessions cut). It holds no rule of its own
but the mapping: a user banned or trashed by an admin stays so after `active: true`.
A token is not the system: it changes only users who hold no more than the provisioning
role, and the email (the way to a password reset) only of users who hold strictly less.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from scim2_models import Email, EnterpriseUser, Meta, Mutability, Name, PatchOp, Schema
from scim2_models import User as ScimUser
from scim2_models.exceptions import InvalidFilterException
from sqlalchemy import Select, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from userdesk.access import service as access
from userdesk.access.rules import Actor, Permission, takeover_problem
from userdesk.audit import service as audit
from userdesk.errors import Conflict, InvalidInput, NotFound, PermissionDenied, PreconditionFailed
from userdesk.scim import filters
from userdesk.scim.tokens import provider_of
from userdesk.users import lifecycle
from userdesk.users import service as users
from userdesk.users.lifecycle import ActionInput
from userdesk.users.models import User
from userdesk.users.rules import Action, CreatedVia, UserStatus, normalize_email
from userdesk.users.schemas import UserCreate, UserUpdate

Resource = ScimUser[EnterpriseUser]
MAX_COUNT = 1000  # ServiceProviderConfig's filter.maxResults
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


@dataclass(frozen=True)
class Page:
    total: int
    start_index: int
    users: list[User]


def version_tag(user: User) -> str:
    """The user's meta.version (and ETag): weak, from the version every change bumps."""
    return f'W/"{user.version}"'


def to_resource(user: User, *, location: str) -> Resource:
    """USER as a SCIM User."""
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
    )


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

    Raises:
        PermissionDenied: the actor may not read users.
        InvalidFilterException: a bad filter, or a sortBy that is not a sortable attribute.
    """
    access.require(actor, Permission.USERS_READ)
    where = _visible(actor)
    if filter_:
        where.append(filters.users_where(filter_))
    start_index = max(start_index, 1)
    count = MAX_COUNT if count is None else max(0, min(count, MAX_COUNT))
    total = db.scalar(select(func.count()).select_from(User).where(*where)) or 0
    if count == 0 or start_index > total:  # past the end (and past any OFFSET a database takes)
        return Page(total, start_index, [])
    query: Select[User] = select(User).where(*where)
    column = _sort_column(sort_by)
    if column is not None:
        query = query.order_by(column.desc() if descending else column.asc())
    query = query.order_by(User.id.desc() if descending and column is None else User.id)
    rows = db.scalars(query.offset(start_index - 1).limit(count)).all()
    return Page(total, start_index, list(rows))


def _sort_column(sort_by: str | None) -> Any:
    if not sort_by:
        return None
    key = sort_by.lower().removeprefix(_SCHEMA_PREFIX)
    if key not in SORTS:
        raise InvalidFilterException(detail=f"sortBy '{sort_by}' is not sortable")
    return SORTS[key]


def _email_of(resource: Resource) -> str:
    return (resource.user_name or "").strip()


def create_user(db: Session, *, actor: Actor, resource: Resource, base_url: str) -> User:
    """A new active user from a SCIM User (created_via scim).

    Raises:
        PermissionDenied: the actor may not create users.
        InvalidInput: a bad userName (email) or name.
        Conflict: the email is taken in the organization.
    """
    name = resource.name or Name()
    email = _email_of(resource)
    check_external_id(resource.external_id)
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
                ),
                base_url=base_url,
            )
    except IntegrityError:
        # Two requests created the same email at once: the loser's check passed before
        # the winner's row was there, and the unique index refused its insert.
        raise Conflict(
            f"{email} is in the organization already.",
            code="user.email_taken",
            fields={"email": f"'{email}' is taken"},
        ) from None
    _set_external_id(db, actor, user, resource.external_id)
    if resource.active is False:
        _set_active(db, actor, user, active=False, provider=provider_of(actor), base_url=base_url)
    db.refresh(user)
    return user


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
) -> User:
    """Make the user what RESOURCE says (PUT).

    Raises:
        NotFound, PreconditionFailed (If-Match is stale), PermissionDenied, InvalidInput,
        Conflict: as users.update_user and users.lifecycle.apply raise them.
    """
    user = get_user(db, actor=actor, user_id=user_id, for_update=True)
    _check_version(user, if_match)
    return _apply(db, actor, user, resource, base_url)


def patch_user(
    db: Session,
    *,
    actor: Actor,
    user_id: str,
    patch: PatchOp[Resource],
    if_match: str | None,
    location: str,
    base_url: str,
) -> User:
    """Apply a SCIM PATCH (scim2-models applies the operations to the user as SCIM shows
    it; the outcome is then applied like a PUT).

    Raises:
        SCIMException: an operation that does not apply (no target, a bad value).
        NotFound, PreconditionFailed, PermissionDenied, InvalidInput, Conflict: as
            replace_user.
    """
    user = get_user(db, actor=actor, user_id=user_id, for_update=True)
    _check_version(user, if_match)
    resource = to_resource(user, location=location)
    if not patch.patch(resource):
        return user
    return _apply(db, actor, user, resource, base_url)


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


def _apply(db: Session, actor: Actor, user: User, resource: Resource, base_url: str) -> User:
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
    if (
        change
        or resource.external_id != user.external_id
        or (
            resource.active is not None
            and resource.active != (user.status in filters.ACTIVE_STATUSES)
        )
    ):
        _require_over(db, actor, user, email_change="email" in change)
    if change:
        users.update_user(
            db,
            actor=actor,
            user_id=user.id,
            data=UserUpdate(**change),
            version=user.version,
            base_url=base_url,
        )
    _set_external_id(db, actor, user, resource.external_id)
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


def _set_external_id(db: Session, actor: Actor, user: User, external_id: str | None) -> None:
    if external_id == user.external_id:
        return
    before = user.external_id
    user.external_id = external_id
    user.version += 1
    db.flush()
    audit.record(
        db,
        actor=actor,
        action="user.updated",
        target_type="user",
        target_id=user.id,
        changes={"external_id": {"from": before, "to": external_id}},
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
