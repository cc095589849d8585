"""Who may do what: actors built from the database, and the checks every service calls."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Protocol

from sqlalchemy import ColumnElement, bindparam, false, func, literal, select, true, union_all
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session

from userdesk.access.models import Group, Role, RolePermission, Team
from userdesk.access.rules import (
    ADMINISTRATOR,
    Actor,
    Grant,
    Permission,
    RoleGrant,
    grants_back_office,
    grants_for,
    membership_change_problem,
    reach_beyond,
    takeover_problem,
)
from userdesk.auth.models import ApiKey
from userdesk.db.prepared import Prepared
from userdesk.errors import NotFound, PermissionDenied
from userdesk.users.models import User, UserGroup, UserRole

# Statements on the path of every request, built once.
# A role's grants, one row per permission (a role without any: one row, permission NULL).
GRANT_COLUMNS = (Role.id, Role.scope, RolePermission.permission)
_USER_GRANTS = (
    select(*GRANT_COLUMNS)
    .join(UserRole, UserRole.role_id == Role.id)
    .join(RolePermission, RolePermission.role_id == Role.id, isouter=True)
    .where(UserRole.user_id == bindparam("user_id"))
)
_ROLE_GRANTS = (
    select(*GRANT_COLUMNS)
    .join(RolePermission, RolePermission.role_id == Role.id, isouter=True)
    .where(Role.id == bindparam("role_id"))
)


class Person(Protocol):
    """What an actor is built from: a user entity, or a signed-in session's columns
    (`auth.service.SessionUser`)."""

    @property
    def id(self) -> int: ...
    @property
    def organization_id(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def team_id(self) -> int | None: ...


def _grants(rows: Iterable[Sequence[Any]], team_ids: list[int]) -> tuple[Grant, ...]:
    by_role: dict[int, tuple[str, set[str]]] = {}
    for role_id, scope, permission in rows:
        entry = by_role.setdefault(role_id, (scope, set()))
        if permission is not None:
            entry[1].add(permission)
    return grants_for(by_role.values(), team_ids)


def actor_for_user(
    db: Session, user: Person, *, ip: str | None = None, user_agent: str | None = None
) -> Actor:
    """The actor for a signed-in USER, with the roles they hold at this moment."""
    connection = db.connection()
    rows = _user_grants(connection.dialect).rows(connection, (), {"user_id": user.id})
    return Actor(
        organization_id=user.organization_id,
        user_id=user.id,
        api_key_id=None,
        name=user.name,
        grants=_grants(rows, [user.team_id] if user.team_id is not None else []),
        ip=ip,
        user_agent=user_agent,
    )


@lru_cache(maxsize=4)
def _user_grants(dialect: Dialect) -> Prepared:
    """_USER_GRANTS compiled once per dialect: every request of a browser session runs it."""
    return Prepared.named(dialect, _USER_GRANTS, ["user_id"], fixed=False)


def actor_for_role(
    db: Session,
    *,
    organization_id: int,
    role_id: int,
    team_id: int | None,
    name: str,
    api_key_id: int | None = None,
    ip: str | None = None,
    user_agent: str | None = None,
) -> Actor:
    """An actor holding one role, scoped to TEAM_ID when the role is team-scoped (API keys)."""
    return actor_with_role_grants(
        db.connection().execute(_ROLE_GRANTS, {"role_id": role_id}),
        organization_id=organization_id,
        team_id=team_id,
        name=name,
        api_key_id=api_key_id,
        ip=ip,
        user_agent=user_agent,
    )


def actor_with_role_grants(
    grant_rows: Iterable[tuple[int, str, str | None]],
    *,
    organization_id: int,
    team_id: int | None,
    name: str,
    api_key_id: int | None = None,
    ip: str | None = None,
    user_agent: str | None = None,
) -> Actor:
    """`actor_for_role` from GRANT_ROWS (GRANT_COLUMNS of the role) that the caller read
    with its own statement: an API key's lookup reads its role's grants in the same one."""
    return Actor(
        organization_id=organization_id,
        user_id=None,
        api_key_id=api_key_id,
        name=name,
        grants=_grants(grant_rows, [team_id] if team_id is not None else []),
        ip=ip,
        user_agent=user_agent,
    )


def require(actor: Actor, permission: str) -> None:
    """Raises PermissionDenied unless ACTOR holds PERMISSION over at least some users."""
    if not actor.has(permission):
        raise PermissionDenied(
            f"You need the '{permission}' permission for this.", code="permission_denied"
        )


def refuse_while_impersonating(actor: Actor, what: str) -> None:
    """What an admin acting as a user may not do as them (their password, email, roles).

    Raises:
        PermissionDenied: ACTOR is an admin impersonating someone.
    """
    if actor.impersonator_id is not None:
        raise PermissionDenied(
            f"You cannot {what} while impersonating {actor.name}.",
            code="impersonation.forbidden",
        )


def builtin_roles_of(db: Session, actor: Actor) -> set[str]:
    """The names of the built-in roles ACTOR acts with (a user's, or an API key's one)."""
    if actor.user_id is not None:
        query = (
            select(Role.name)
            .join(UserRole, UserRole.role_id == Role.id)
            .where(UserRole.user_id == actor.user_id, Role.builtin.is_(True))
        )
    elif actor.api_key_id is not None:
        query = (
            select(Role.name)
            .join(ApiKey, ApiKey.role_id == Role.id)
            .where(ApiKey.id == actor.api_key_id, Role.builtin.is_(True))
        )
    else:
        return {ADMINISTRATOR.name}  # the system acts as an Administrator
    return set(db.scalars(query))


def user_holds_builtin(db: Session, user: User, name: str) -> bool:
    return (
        db.scalar(
            select(Role.id)
            .join(UserRole, UserRole.role_id == Role.id)
            .where(UserRole.user_id == user.id, Role.name == name, Role.builtin.is_(True))
        )
        is not None
    )


def require_not_weaker(db: Session, actor: Actor, user: User) -> None:
    """Nobody acts on a user who holds a permission they lack, or holds it over users
    beyond the actor's reach (an organization-wide Agent, to a Team Administrator).

    Raises:
        PermissionDenied: naming the permissions the actor lacks.
    """
    _require_within_reach(actor_for_user(db, user), actor, user)


def _require_within_reach(holder: Actor, actor: Actor, user: User) -> None:
    lacking = reach_beyond(holder, actor)
    if lacking:
        raise PermissionDenied(
            f"{user.name} holds {', '.join(lacking)} over more users than you do.",
            code="permission_denied",
        )


def require_stronger(db: Session, actor: Actor, user: User, *, what: str) -> None:
    """Nobody sends a link that sets the password or the address of a user who holds as
    much as they do (WHAT: the action, e.g. "be sent a verification email"): the user's
    permissions must be a strict subset of the actor's, held within the actor's reach, as
    for impersonation. The system (operator commands) may.

    Raises:
        PermissionDenied: naming what the user holds.
    """
    if actor.user_id is None and actor.api_key_id is None:
        return
    holder = actor_for_user(db, user)
    _require_within_reach(holder, actor, user)
    if problem := takeover_problem(user.name, holder.permissions, actor.permissions, what):
        raise PermissionDenied(problem, code="permission_denied")


def users_in_scope(actor: Actor, permission: str) -> ColumnElement[bool]:
    """A WHERE clause selecting the users of ACTOR's organization that PERMISSION covers."""
    scope = actor.team_scope(permission)
    if scope is not None and not scope:
        return false()
    return _users_of(actor.organization_id, None if scope is None else tuple(sorted(scope)))


@lru_cache(maxsize=1024)
def _users_of(organization_id: int, team_ids: tuple[int, ...] | None) -> ColumnElement[bool]:
    """The clause of `users_in_scope`, built once per reach: building it cost the Users
    list a twentieth of its time. Only the SQL is kept: the reach is the actor's, read
    from the database at each request."""
    in_org = User.organization_id == organization_id
    if team_ids is None:
        return in_org & true()
    return in_org & User.team_id.in_(team_ids)


def get_role_by_name(db: Session, organization_id: int, name: str) -> Role:
    """Raises NotFound when the organization has no role called NAME (case-insensitive)."""
    role = db.scalar(
        select(Role).where(
            Role.organization_id == organization_id, func.lower(Role.name) == name.lower()
        )
    )
    if role is None:
        raise NotFound(
            f"No role '{name}'.", code="role.not_found", fields={"role": f"'{name}' is not a role"}
        )
    return role


def get_team_by_name(db: Session, organization_id: int, name: str) -> Team:
    """Raises NotFound when the organization has no team called NAME (case-insensitive)."""
    team = db.scalar(
        select(Team).where(
            Team.organization_id == organization_id, func.lower(Team.name) == name.lower()
        )
    )
    if team is None:
        raise NotFound(
            f"No team '{name}'.", code="team.not_found", fields={"team": f"'{name}' is not a team"}
        )
    return team


@dataclass(frozen=True)
class RoleSummary:
    role: Role
    holders: int


@dataclass(frozen=True)
class NamedCount:
    id: int
    name: str
    members: int


@dataclass(frozen=True)
class OrganizationAccess:
    """The organization's roles with their permissions, and its teams and groups."""

    roles: list[RoleSummary]
    teams: list[NamedCount]
    groups: list[NamedCount]


def organization_overview(db: Session, *, actor: Actor) -> OrganizationAccess:
    """Roles, teams and groups with how many users each has.

    Raises:
        PermissionDenied: the actor may not manage settings.
    """
    require(actor, Permission.SETTINGS_MANAGE)
    org = actor.organization_id
    role_counts = dict(
        db.execute(
            select(UserRole.role_id, func.count())
            .where(UserRole.organization_id == org)
            .group_by(UserRole.role_id)
        ).all()
    )
    roles = db.scalars(select(Role).where(Role.organization_id == org).order_by(Role.id)).all()
    team_rows = db.execute(
        select(Team.id, Team.name, func.count(User.id))
        .join(User, User.team_id == Team.id, isouter=True)
        .where(Team.organization_id == org)
        .group_by(Team.id, Team.name)
        .order_by(Team.name)
    ).all()
    group_rows = db.execute(
        select(Group.id, Group.name, func.count(UserGroup.user_id))
        .join(UserGroup, UserGroup.group_id == Group.id, isouter=True)
        .where(Group.organization_id == org)
        .group_by(Group.id, Group.name)
        .order_by(Group.name)
    ).all()
    return OrganizationAccess(
        roles=[RoleSummary(role, role_counts.get(role.id, 0)) for role in roles],
        teams=[NamedCount(*row) for row in team_rows],
        groups=[NamedCount(*row) for row in group_rows],
    )


@dataclass(frozen=True)
class FilterChoices:
    """The names a Users list can be filtered by."""

    teams: list[str]
    groups: list[str]
    roles: list[str]


# The team, group and role names of an organization, in one statement built once.
_CHOICES = union_all(
    *(
        select(literal(kind).label("kind"), model.name).where(
            model.organization_id == bindparam("organization_id")
        )
        for kind, model in (("team", Team), ("group", Group), ("role", Role))
    )
).order_by("kind", "name")


def filter_choices(db: Session, *, actor: Actor) -> FilterChoices:
    """Team, group and role names of the actor's organization.

    Raises:
        PermissionDenied: the actor may not read users.
    """
    require(actor, Permission.USERS_READ)
    names: dict[str, list[str]] = {"team": [], "group": [], "role": []}
    connection = db.connection()
    choices = _choices_statement(connection.dialect)
    for kind, name in choices.rows(connection, (), {"organization_id": actor.organization_id}):
        names[kind].append(name)
    return FilterChoices(teams=names["team"], groups=names["group"], roles=names["role"])


@lru_cache(maxsize=4)
def _choices_statement(dialect: Dialect) -> Prepared:
    """_CHOICES compiled once per dialect: the Users page runs it on every view."""
    return Prepared.named(dialect, _CHOICES, ["organization_id"], fixed=True)


def role_grant(role: Role) -> RoleGrant:
    """ROLE as the grant rules see it."""
    return RoleGrant(role.id, role.name, role.scope, frozenset(role.permissions))


def gives_back_office(role: Role) -> bool:
    """Whether ROLE gives back-office access (holds a permission; Member holds none)."""
    return grants_back_office(role.permissions)


def roles_of(db: Session, user: User) -> list[Role]:
    """The roles USER holds."""
    return list(
        db.scalars(
            select(Role)
            .join(UserRole, UserRole.role_id == Role.id)
            .where(UserRole.user_id == user.id)
            .order_by(Role.id)
        )
    )


@dataclass(frozen=True)
class Assignable:
    """What an actor may give a user: teams, groups, the roles they may grant or take
    away, and (editing someone) the roles the user holds that they may not change."""

    teams: list[Team]
    groups: list[Group]
    roles: list[Role]
    kept_roles: list[Role] = field(default_factory=list)
    team_locked: bool = False


def assignable(
    db: Session,
    *,
    actor: Actor,
    permission: str = Permission.USERS_CREATE,
    user: User | None = None,
) -> Assignable:
    """The teams (the actor's own, for a team-scoped actor), groups and grantable roles,
    for creating users (PERMISSION users.create) or editing USER (users.update).

    The roles are those membership_change_problem lets the actor give (or take away from
    USER); the roles USER holds that it does not are kept_roles. Editing oneself, the
    roles and the team are all kept.

    Raises:
        PermissionDenied: the actor lacks PERMISSION.
    """
    require(actor, permission)
    org = actor.organization_id
    scope = actor.team_scope(permission)
    teams_query = select(Team).where(Team.organization_id == org).order_by(Team.name)
    if scope is not None:
        teams_query = teams_query.where(Team.id.in_(sorted(scope)))
    every = list(db.scalars(select(Role).where(Role.organization_id == org).order_by(Role.id)))
    held = roles_of(db, user) if user is not None else []
    held_grants = [role_grant(role) for role in held]
    held_ids = {role.id for role in held}
    # The teams the user is (or may be put) in: a role offered fits at least one.
    candidates: list[int | None] = [user.team_id] if user is not None else [None]
    if user is None and scope:
        candidates = list[int | None](sorted(scope))

    def changeable(role: Role) -> bool:
        grant = role_grant(role)
        after = (
            [g for g in held_grants if g.id != role.id]
            if role.id in held_ids
            else [*held_grants, grant]
        )
        return any(
            membership_change_problem(
                actor,
                user_id=user.id if user is not None else None,
                team_before=team,
                roles_before=held_grants,
                team_after=team,
                roles_after=after,
            )
            is None
            for team in candidates
        )

    offered = [role for role in every if changeable(role)]
    return Assignable(
        teams=list(db.scalars(teams_query)),
        groups=list(
            db.scalars(select(Group).where(Group.organization_id == org).order_by(Group.name))
        ),
        roles=offered,
        kept_roles=[role for role in held if role not in offered],
        team_locked=user is not None and user.id == actor.user_id,
    )
