"""Many users in one request, for a host product that syncs its accounts
(POST /api/v1/users/batch).

Idempotent on the email (normalized as everywhere): an item whose email is in the
organization already is answered `unchanged` with that user's id when the fields it gives
are as they are, and `updated` when they differ, changed as PATCH changes them (with
PATCH's checks; a different `created_at` is set too). So sending the same batch twice
creates nobody twice and records nothing the second time. Each item is answered by its
index; a bad item is refused alone.

New users go in a few statements for the whole batch (bulk.insert_rows, audit.record_many),
not one service call each: the checks are those of `users.add_user`, made in Python
against the organization's teams, groups and roles read once. An insert that meets an
email another transaction created meanwhile skips it (ON CONFLICT DO NOTHING), and the item
is then answered as an existing user. Updates, rare in a sync, go one by one through
`users.update_user`, each in a savepoint, so that a refused one leaves nothing behind.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from userdesk.access import service as access
from userdesk.access.rules import Actor, Permission
from userdesk.audit import service as audit
from userdesk.auth import password_imports
from userdesk.auth.imported_hashes import Policy
from userdesk.db import bulk
from userdesk.db.base import utcnow
from userdesk.errors import DomainError, InvalidInput
from userdesk.mail.rules import EmailKind
from userdesk.organizations.models import Organization
from userdesk.users import membership
from userdesk.users import service as users
from userdesk.users.models import User, UserGroup, UserRole
from userdesk.users.rules import UserStatus, email_problem, normalize_email
from userdesk.users.schemas import BATCH_MAX_USERS, UserCreate, UserUpdate
from userdesk.validation import id_problem

NO_LINKS = membership.Membership(team=None, groups=[], roles=[])
CREATED, UNCHANGED, UPDATED, ERROR = "created", "unchanged", "updated", "error"
# The fields of an item compared with an existing user, and changed as PATCH changes them.
PATCHED = ("first_name", "last_name", "team_id", "group_ids", "role_ids")
# What a JSON value that is not an object is, as its sender calls it.
JSON_KINDS = {str: "a string", int: "a number", float: "a number", bool: "true or false"}
JSON_KINDS |= {list: "an array", type(None): "null"}
USER_COLUMNS = (
    "id",
    "organization_id",
    "email",
    "email_normalized",
    "first_name",
    "last_name",
    "status",
    "created_via",
    "team_id",
    "validated_at",
    "created_at",
    "updated_at",
    "version",
    "password_hash",
)


@dataclass
class _Item:
    """A valid item: its index, what it says, its email as compared, its created_at."""

    index: int
    data: UserCreate
    key: str
    created_at: datetime | None
    links: membership.Membership = field(default_factory=lambda: NO_LINKS)
    user_id: int = 0  # once created


@dataclass
class _Answer:
    fates: dict[int, dict[str, Any]] = field(default_factory=dict)

    def done(self, index: int, status: str, user_id: int) -> None:
        self.fates[index] = {"index": index, "status": status, "id": str(user_id), "error": None}

    def refuse(self, index: int, field_name: str, message: str, code: str) -> None:
        error = {"field": field_name, "message": message, "code": code}
        self.fates[index] = {"index": index, "status": ERROR, "id": None, "error": error}

    def refuse_for(self, index: int, error: DomainError) -> None:
        field_name, message = next(iter(error.fields.items()), ("", error.message))
        self.refuse(index, field_name, message, error.code)


def sync_users(db: Session, *, actor: Actor, items: Sequence[Any], base_url: str) -> dict[str, Any]:
    """Create, or find and bring up to date, the users of ITEMS (each as UserCreate takes
    it); each item's fate by its index (UserBatchRead).

    Raises:
        PermissionDenied: the actor may not create users.
        InvalidInput: more than BATCH_MAX_USERS items (each item's own problems are
            answered by its index, not raised).
    """
    access.require(actor, Permission.USERS_CREATE)
    if len(items) > BATCH_MAX_USERS:
        raise InvalidInput(
            f"The batch has {len(items):,} users: send at most {BATCH_MAX_USERS:,} a request.",
            fields={"users": f"has {len(items):,} items: at most {BATCH_MAX_USERS:,}"},
        )
    now = utcnow()
    answer = _Answer()
    organization = db.get_one(Organization, actor.organization_id)
    valid = _read(items, answer, now, password_imports.policy(organization))
    found = _existing(db, actor, [item.key for item in valid])
    known = membership.catalog(db, actor.organization_id)
    new = []
    for item in valid:
        if item.key in found:
            _answer_existing(db, actor, item, found[item.key], answer, base_url)
            continue
        try:
            item.links = membership.resolve(
                db,
                actor=actor,
                team_id=item.data.team_id,
                group_ids=item.data.group_ids,
                role_ids=item.data.role_ids,
                known=known,
            )
        except DomainError as error:
            answer.refuse_for(item.index, error)
            continue
        new.append(item)
    lost = _create(db, actor, new, answer, now, base_url)
    if lost:  # created by another transaction since `_existing` looked
        found = _existing(db, actor, [item.key for item in lost])
        for item in lost:
            if item.key in found:
                _answer_existing(db, actor, item, found[item.key], answer, base_url)
            else:  # gone again meanwhile: rare enough to leave to the next sync
                message = "was being changed by another request: send it again"
                answer.refuse(item.index, "email", message, "user.conflict")
    fates = [answer.fates[index] for index in range(len(items))]
    counts = dict.fromkeys((CREATED, UNCHANGED, UPDATED, ERROR), 0)
    for fate in fates:
        counts[fate["status"]] += 1
    return {
        "items": fates,
        "created": counts[CREATED],
        "unchanged": counts[UNCHANGED],
        "updated": counts[UPDATED],
        "errors": counts[ERROR],
    }


def _read(items: Sequence[Any], answer: _Answer, now: datetime, allowed: Policy) -> list[_Item]:
    """The items that are valid on their own; the others refused in ANSWER (a password
    hash as the organization's ALLOWED policy takes it)."""
    valid = []
    first: dict[str, int] = {}  # each email's first item
    for index, raw in enumerate(items):
        if not isinstance(raw, dict):
            kind = JSON_KINDS.get(type(raw), type(raw).__name__)
            answer.refuse(index, f"users[{index}]", f"is {kind}, not an object", "invalid_input")
            continue
        try:
            data = UserCreate.model_validate(raw)
        except ValidationError as invalid:
            error = invalid.errors()[0]
            value = error.get("input")
            shown = "" if isinstance(value, dict | list) or value is None else f" (got {value!r})"
            name = ".".join(str(part) for part in error.get("loc", ())) or "body"
            answer.refuse(index, name, f"{error['msg']}{shown}", "invalid_input")
            continue
        if problem := email_problem(data.email):
            answer.refuse(index, "email", problem, "invalid_input")
            continue
        key = normalize_email(data.email)
        if key in first:
            message = f"'{data.email.strip()}' is also item {first[key]}"
            answer.refuse(index, "email", message, "user.duplicate")
            continue
        first[key] = index
        problems, created_at = users.new_user_problems(data, now=now)
        problems |= {
            name: problem
            for name, values in (
                ("team_id", [data.team_id] if data.team_id is not None else []),
                ("group_ids", data.group_ids),
                ("role_ids", data.role_ids),
            )
            for value in values
            if (problem := id_problem(value))
        }
        if data.password_hash is not None and (
            problem := password_imports.hash_problem(data.password_hash, allowed=allowed)
        ):
            problems[password_imports.FIELD] = problem
        if problems:
            answer.refuse(index, *next(iter(problems.items())), "invalid_input")
            continue
        valid.append(_Item(index, data, key, created_at))
    return valid


@dataclass
class _Known:
    """An existing user as an item is compared with it."""

    user: User
    in_reach: bool
    groups: set[int]
    roles: set[int]


def _existing(db: Session, actor: Actor, keys: list[str]) -> dict[str, _Known]:
    """The users of the organization with those emails (normalized), by email: each with
    whether the actor reaches it, its groups and its roles."""
    if not keys:
        return {}
    found = {
        user.email_normalized: user
        for user in db.scalars(
            select(User).where(
                User.organization_id == actor.organization_id, User.email_normalized.in_(keys)
            )
        )
    }
    if not found:
        return {}
    ids = [user.id for user in found.values()]
    reach = set(
        db.scalars(
            select(User.id).where(
                User.id.in_(ids), access.users_in_scope(actor, Permission.USERS_READ)
            )
        )
    )
    groups: dict[int, set[int]] = {}
    roles: dict[int, set[int]] = {}
    for user_id, group_id in db.execute(
        select(UserGroup.user_id, UserGroup.group_id).where(UserGroup.user_id.in_(ids))
    ):
        groups.setdefault(user_id, set()).add(group_id)
    for user_id, role_id in db.execute(
        select(UserRole.user_id, UserRole.role_id).where(UserRole.user_id.in_(ids))
    ):
        roles.setdefault(user_id, set()).add(role_id)
    return {
        key: _Known(user, user.id in reach, groups.get(user.id, set()), roles.get(user.id, set()))
        for key, user in found.items()
    }


def _differences(item: _Item, known: _Known) -> dict[str, Any]:
    """The fields ITEM gives (of PATCHED) whose values differ from the user's."""
    data, user = item.data, known.user
    given = data.model_fields_set
    now: dict[str, Any] = {
        "first_name": user.first_name,
        "last_name": user.last_name,
        "team_id": user.team_id,
        "group_ids": known.groups,
        "role_ids": known.roles,
    }
    wanted: dict[str, Any] = {
        "first_name": data.first_name.strip(),
        "last_name": data.last_name.strip(),
        "team_id": int(data.team_id) if data.team_id is not None else None,
        "group_ids": {int(i) for i in data.group_ids},
        "role_ids": {int(i) for i in data.role_ids},
    }
    return {
        name: getattr(data, name) for name in PATCHED if name in given and wanted[name] != now[name]
    }


def _answer_existing(
    db: Session, actor: Actor, item: _Item, known: _Known, answer: _Answer, base_url: str
) -> None:
    """ITEM's email is KNOWN's: unchanged, updated as PATCH would, or refused."""
    user = known.user
    if not known.in_reach:  # as POST /users answers: no more is told of someone out of reach
        message = f"'{item.data.email.strip()}' is taken"
        answer.refuse(item.index, "email", message, "user.email_taken")
        return
    changes = _differences(item, known)
    backdated = item.created_at is not None and item.created_at != user.created_at
    if not changes and not backdated:
        answer.done(item.index, UNCHANGED, user.id)
        return
    try:
        with db.begin_nested():
            if changes:
                users.update_user(
                    db,
                    actor=actor,
                    user_id=user.id,
                    data=UserUpdate(**changes),
                    version=user.version,
                    base_url=base_url,
                )
            if backdated and item.created_at is not None:
                users.backdate(db, actor=actor, user_id=user.id, created_at=item.created_at)
    except DomainError as error:
        answer.refuse_for(item.index, error)
        return
    answer.done(item.index, UPDATED, user.id)


def _create(
    db: Session,
    actor: Actor,
    items: list[_Item],
    answer: _Answer,
    now: datetime,
    base_url: str,
) -> list[_Item]:
    """Create the users of ITEMS, their links and audit events in a few statements, and
    send the welcome emails asked for; the items whose email another transaction took
    meanwhile (nothing created for them)."""
    if not items:
        return []
    conn = db.connection()
    time = bulk.sql_time(conn.dialect.name)
    org = actor.organization_id
    ids = bulk.next_ids(conn, "users", len(items))
    rows = []
    for user_id, item in zip(ids, items, strict=True):
        data, links = item.data, item.links
        item.user_id = user_id
        pending = data.status == UserStatus.PENDING.value
        rows.append(
            (
                user_id,
                org,
                data.email.strip(),
                item.key,
                data.first_name.strip(),
                data.last_name.strip(),
                UserStatus.PENDING.value if pending else UserStatus.ACTIVE.value,
                users.created_via_of(actor, data),
                links.team.id if links.team else None,
                time(item.created_at or now),  # validated on creation, as add_user does
                time(item.created_at or now),
                time(now),
                1,
                data.password_hash,  # checked by _read; kept until the first sign-in
            )
        )
    bulk.insert_rows(conn, "users", USER_COLUMNS, rows, skip_taken=True)
    taken = bulk.select_in(conn, "SELECT id FROM users WHERE id IN ({values})", ids)
    inserted = {row[0] for row in taken}
    made = [item for item in items if item.user_id in inserted]
    groups: list[tuple[int, int, int]] = []
    roles: list[tuple[int, int, int]] = []
    events: list[tuple[int, dict[str, Any]]] = []
    for item in made:
        data, links, user_id = item.data, item.links, item.user_id
        groups.extend((org, user_id, group.id) for group in links.groups)
        roles.extend((org, user_id, role.id) for role in links.roles)
        pending = data.status == UserStatus.PENDING.value
        status = UserStatus.PENDING.value if pending else UserStatus.ACTIVE.value
        changes: dict[str, Any] = {
            "email": data.email.strip(),
            **links.names(),
            "welcome_email": data.send_welcome_email,
        }
        if pending:
            changes |= {"status": status, "created_via": users.created_via_of(actor, data)}
        if item.created_at is not None:
            changes["created_at"] = item.created_at.isoformat()
        if data.password_hash is not None:
            changes |= password_imports.audited(data.password_hash)
        events.append((user_id, changes))
        answer.done(item.index, CREATED, user_id)
    bulk.insert_rows(conn, "user_groups", ("organization_id", "user_id", "group_id"), groups)
    bulk.insert_rows(conn, "user_roles", ("organization_id", "user_id", "role_id"), roles)
    audit.record_many(db, actor=actor, action="user.created", target_type="user", targets=events)
    for item in made:
        if item.data.send_welcome_email:
            user = db.get_one(User, item.user_id)
            users.send_set_password_email(db, user=user, kind=EmailKind.WELCOME, base_url=base_url)
    return [item for item in items if item.user_id not in inserted]
