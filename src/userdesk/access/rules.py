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
    MAIL_READ = "mail.read"  # the Mailbox (links that open an account hidden)
    WEBHOOKS_MANAGE = "webhooks.manage"  # endpoints, their secrets, messages and replays
    SCIM_MANAGE = "scim.manage"  # SCIM tokens and the provider's request log


ALL_PERMISSIONS = frozenset(Permission)

# What each permission lets its holder do, in words: the console shows these, never the keys.
PERMISSION_WORDS: dict[Permission, str] = {
    Permission.USERS_READ: "See users",
    Permission.USERS_CREATE: "Add and invite users",
    Permission.USERS_UPDATE: "Edit users",
    Permission.USERS_DELETE: "Trash and delete users",
    Permission.USERS_EXPORT: "Export users",
    Permission.USERS_IMPORT: "Import users",
    Permission.USERS_ACTIVITY: "See what users did",
    Permission.USERS_IMPERSONATE: "Sign in as a user",
    Permission.USERS_MODERATE: "Validate, disable and ban users",
    Permission.USERS_ACTIVATE: "Activate users without an invitation",
    Permission.ROLES_ASSIGN: "Give and take away roles",
    Permission.SETTINGS_MANAGE: "Change settings",
    Permission.AUDIT_READ: "Read the audit log",
    Permission.MAIL_READ: "Read the Mailbox",
    Permission.WEBHOOKS_MANAGE: "Manage webhooks",
    Permission.SCIM_MANAGE: "Manage SCIM provisioning",
}


def permission_words(key: str) -> str:
    """KEY (a permission, maybe unknown) as the console says it."""
    try:
        return PERMISSION_WORDS[Permission(key)]
    except ValueError:
        return key


def grants_back_office(permissions: Iterable[str]) -> bool:
    """Whether a role holding PERMISSIONS gives any back-office access (Member gives none)."""
    return any(permission in ALL_PERMISSIONS for permission in permissions)


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


def holds_everywhere(actor: Actor, permission: str) -> bool:
    """Whether ACTOR holds PERMISSION over every user of the organization."""
    return actor.has(permission) and actor.team_scope(permission) is None


def _lacking(actor: Actor, permission: str, covered: bool, where: str) -> str | None:
    if covered:
        return None
    return permission if not actor.has(permission) else f"{permission} {where}"


def takeover_problem(
    name: str, theirs: frozenset[str], mine: frozenset[str], what: str
) -> str | None:
    """Why someone holding MINE may not WHAT (e.g. "be impersonated") NAME, who holds THEIRS;
    None when they may.

    Acting as someone, or sending them a link that sets their password or address, takes
    holding strictly more than they do: a subset is not enough, so one Administrator never
    takes over another's account.
    """
    if theirs < mine:
        return None
    more = sorted(theirs - mine)
    if more:
        return f"{name} holds {', '.join(more)}, which you lack."
    return f"{name} holds every permission you hold: only a user with fewer permissions can {what}."


def missing_to_grant(
    actor: Actor, role_permissions: Iterable[str], *, role_scope: str, team_id: int | None
) -> list[str]:
    """What ACTOR lacks to give (or take away) a role holding ROLE_PERMISSIONS with
    ROLE_SCOPE to a user of TEAM_ID (None: in no team); empty when they may.

    A role's scope is part of what it grants: an organization-wide role is given only by
    someone holding each of its permissions organization-wide, a team-scoped one only by
    someone holding each of them over the user's team; and granting takes roles.assign
    over that user.
    """
    missing = []
    team = "over that user's team"
    if problem := _lacking(
        actor, Permission.ROLES_ASSIGN, actor.covers(Permission.ROLES_ASSIGN, team_id), team
    ):
        missing.append(problem)
    for permission in sorted(set(role_permissions)):
        if role_scope == RoleScope.TEAM:
            problem = _lacking(actor, permission, actor.covers(permission, team_id), team)
        else:
            problem = _lacking(
                actor, permission, holds_everywhere(actor, permission), "organization-wide"
            )
        if problem:
            missing.append(problem)
    return missing


@dataclass(frozen=True)
class RoleGrant:
    """A role as far as granting goes: its id, name, scope and permissions."""

    id: int
    name: str
    scope: str
    permissions: frozenset[str]


def membership_change_problem(
    actor: Actor,
    *,
    user_id: int | None,
    team_before: int | None,
    roles_before: Iterable[RoleGrant],
    team_after: int | None,
    roles_after: Iterable[RoleGrant],
) -> tuple[str, str] | None:
    """(field, message) of the first reason ACTOR may not change a user's team and roles
    from (TEAM_BEFORE, ROLES_BEFORE) to (TEAM_AFTER, ROLES_AFTER); None when they may.

    USER_ID is the user's (None for someone new). Nobody changes their own roles or team:
    another admin must. Each role given is checked over the team the user lands in, each
    role taken away over the team the user was in, and a team-scoped role the user keeps
    while changing team over the new team (it then covers that team).
    """
    before = {role.id: role for role in roles_before}
    after = {role.id: role for role in roles_after}
    if user_id is not None and actor.user_id == user_id:
        if set(before) != set(after):
            return ("role_ids", "You cannot change your own roles: another admin must.")
        if team_before != team_after:
            return ("team_id", "You cannot change your own team: another admin must.")
    checks = [(role, team_after, "give") for i, role in after.items() if i not in before]
    checks += [(role, team_before, "take away") for i, role in before.items() if i not in after]
    if team_before != team_after:
        checks += [
            (role, team_after, "move")
            for i, role in after.items()
            if i in before and role.scope == RoleScope.TEAM
        ]
    for role, team_id, verb in checks:
        missing = missing_to_grant(actor, role.permissions, role_scope=role.scope, team_id=team_id)
        if not missing:
            continue
        lacks = f"it takes {', '.join(missing)}, which you lack"
        if verb == "move":
            return (
                "team_id",
                f"You cannot move a holder of the team role '{role.name}' there: {lacks}.",
            )
        return ("role_ids", f"You cannot {verb} '{role.name}': {lacks}.")
    return None


def missing_to_define(actor: Actor, role_permissions: Iterable[str]) -> list[str]:
    """What ACTOR lacks to make, change or delete a role holding ROLE_PERMISSIONS: a role
    is defined for the whole organization, so each permission held organization-wide."""
    return [
        p if not actor.has(p) else f"{p} organization-wide"
        for p in sorted(set(role_permissions))
        if not holds_everywhere(actor, p)
    ]


def reach_beyond(holder: Actor, actor: Actor) -> list[str]:
    """The permissions HOLDER holds over users ACTOR does not reach with them (scope
    included: an organization-wide holder is beyond a team-scoped actor)."""
    beyond = []
    for permission in sorted(holder.permissions):
        mine = actor.team_scope(permission)
        if mine is None:
            continue
        theirs = holder.team_scope(permission)
        if not actor.has(permission) or theirs is None or not theirs <= mine:
            beyond.append(permission)
    return beyond
