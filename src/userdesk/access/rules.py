"""Pure authorization rules: the permissions, the built-in roles, and what an actor may do."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum


class Permission(StrEnum):
    USERS_READ = "users.read"
    USERS_CREATE = "users.create"
    USERS_UPDATE = "users.update"
    USERS_DELETE = "users.delete"
    USERS_EXPORT = "users.export"
    USERS_IMPORT = "users.import"
    USERS_ACTIVITY = "users.activity"
    USERS_IMPERSONATE = "users.impersonate"
    USERS_MODERATE = "users.moderate"
    USERS_ACTIVATE = "users.activate"
    ROLES_ASSIGN = "roles.assign"
    SETTINGS_MANAGE = "settings.manage"
    AUDIT_READ = "audit.read"


ALL_PERMISSIONS = frozenset(Permission)


class RoleScope(StrEnum):
    ORGANIZATION = "organization"
    TEAM = "team"


@dataclass(frozen=True)
class BuiltinRole:
    name: str
    scope: RoleScope
    permissions: frozenset[Permission]
    description: str


ADMINISTRATOR = BuiltinRole(
    "Administrator",
    RoleScope.ORGANIZATION,
    ALL_PERMISSIONS,
    "Everything, for every user of the organization.",
)
TEAM_ADMINISTRATOR = BuiltinRole(
    "Team Administrator",
    RoleScope.TEAM,
    frozenset(
        {
            Permission.USERS_READ,
            Permission.USERS_CREATE,
            Permission.USERS_UPDATE,
            Permission.USERS_DELETE,
            Permission.USERS_EXPORT,
            Permission.USERS_IMPORT,
            Permission.USERS_ACTIVITY,
            Permission.USERS_MODERATE,
            Permission.USERS_ACTIVATE,
            Permission.ROLES_ASSIGN,
        }
    ),
    "Manages the users of the teams they belong to.",
)
AGENT = BuiltinRole(
    "Agent",
    RoleScope.ORGANIZATION,
    frozenset({Permission.USERS_READ, Permission.USERS_ACTIVITY}),
    "Support staff: sees users and what they did.",
)
MEMBER = BuiltinRole(
    "Member",
    RoleScope.ORGANIZATION,
    frozenset(),
    "An end user of the product, with no back-office access.",
)
BUILTIN_ROLES = (ADMINISTRATOR, TEAM_ADMINISTRATOR, AGENT, MEMBER)


@dataclass(frozen=True)
class Grant:
    """Permissions held through one role: everywhere, or only over users of some teams."""

    permissions: frozenset[str]
    team_ids: frozenset[int] | None = None  # None: the whole organization


@dataclass(frozen=True)
class Actor:
    """Who is acting, from where, and what they hold right now.

    A signed-in user, an API key, or the system (the CLI, the worker): exactly one of
    user_id and api_key_id is set, or neither for the system.
    """

    organization_id: int
    user_id: int | None
    api_key_id: int | None
    name: str
    grants: tuple[Grant, ...] = field(default=())
    ip: str | None = None
    user_agent: str | None = None
    # The admin acting as this user, in an impersonated session.
    impersonator_id: int | None = None
    impersonator_name: str | None = None

    @property
    def permissions(self) -> frozenset[str]:
        """Every permission held anywhere."""
        held: set[str] = set()
        for grant in self.grants:
            held |= grant.permissions
        return frozenset(held)

    def has(self, permission: str) -> bool:
        """Whether the permission is held over at least some users."""
        return any(permission in grant.permissions for grant in self.grants)

    def team_scope(self, permission: str) -> frozenset[int] | None:
        """The teams whose users the permission covers; None means every user.

        Raises nothing; an actor without the permission gets an empty set.
        """
        teams: set[int] = set()
        for grant in self.grants:
            if permission not in grant.permissions:
                continue
            if grant.team_ids is None:
                return None
            teams |= grant.team_ids
        return frozenset(teams)

    def covers(self, permission: str, team_id: int | None) -> bool:
        """Whether the permission is held over a user of TEAM_ID (None: in no team)."""
        scope = self.team_scope(permission)
        if scope is None:
            return True
        return team_id is not None and team_id in scope

    @property
    def has_console_access(self) -> bool:
        return self.has(Permission.USERS_READ)


def grants_for(
    roles: Iterable[tuple[str, Iterable[str]]], team_ids: Iterable[int]
) -> tuple[Grant, ...]:
    """The grants of someone holding ROLES (scope, permissions) and belonging to TEAM_IDS.

    A team-scoped role covers the holder's own teams only; with no team it covers nobody.
    """
    teams = frozenset(team_ids)
    grants = []
    for scope, permissions in roles:
        perms = frozenset(permissions)
        if not perms:
            continue
        if scope == RoleScope.TEAM:
            grants.append(Grant(perms, teams))
        else:
            grants.append(Grant(perms, None))
    return tuple(grants)


def system_actor(organization_id: int, name: str = "system") -> Actor:
    """The actor of operator commands (the CLI) and the worker: every permission."""
    return Actor(organization_id, None, None, name, (Grant(frozenset(ALL_PERMISSIONS)),))


def missing_to_grant(actor: Actor, role_permissions: Iterable[str]) -> list[str]:
    """What ACTOR lacks to give a role holding ROLE_PERMISSIONS (empty: they may).

    Nobody grants what they do not hold, and granting at all takes roles.assign.
    """
    missing = sorted(set(role_permissions) - actor.permissions)
    if not actor.has(Permission.ROLES_ASSIGN):
        missing.insert(0, Permission.ROLES_ASSIGN.value)
    return missing
