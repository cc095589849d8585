"""Which team, groups and roles a new or edited user gets, checked against the actor."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from userdesk.access.models import Group, Role, Team
from userdesk.access.rules import Actor, Permission, membership_change_problem
from userdesk.access.service import role_grant
from userdesk.errors import InvalidInput, PermissionDenied
from userdesk.users.models import User, UserGroup, UserRole
from userdesk.validation import parse_id

Linked = TypeVar("Linked", Group, Role)


@dataclass(frozen=True)
class Membership:
    team: Team | None
    groups: list[Group]
    roles: list[Role]

    def names(self) -> dict[str, object]:
        """For an audit event."""
        return {
            "team": self.team.name if self.team else None,
            "groups": [g.name for g in self.groups],
            "roles": [r.name for r in self.roles],
        }


@dataclass(frozen=True)
class Catalog:
    """An organization's teams, groups and roles by id, read once for many users (a batch)
    instead of once per user."""

    teams: dict[int, Team]
    groups: dict[int, Group]
    roles: dict[int, Role]


Named = TypeVar("Named", Team, Group, Role)


def catalog(db: Session, organization_id: int) -> Catalog:
    def of(model: type[Named]) -> dict[int, Named]:
        where = model.organization_id == organization_id
        return {row.id: row for row in db.scalars(select(model).where(where))}

    return Catalog(teams=of(Team), groups=of(Group), roles=of(Role))


def _ids(field: str, values: Sequence[str], problems: dict[str, str]) -> list[int]:
    ids = []
    for index, value in enumerate(values):
        if (found := parse_id(value)) is None:
            problems[f"{field}[{index}]"] = f"{value!r} is not an id"
        else:
            ids.append(found)
    return ids


def resolve(
    db: Session,
    *,
    actor: Actor,
    team_id: str | None,
    group_ids: Sequence[str],
    role_ids: Sequence[str],
    default_team: bool = True,
    permission: str = Permission.USERS_CREATE,
    check_roles: bool = True,
    known: Catalog | None = None,
) -> Membership:
    """The team, groups and roles named by id, in the actor's organization.

    A team-scoped actor's users (new ones, or edited ones: PERMISSION says which) land in
    its team: with no team given, the actor's only team; another team is refused. KNOWN,
    the organization's catalog, spares reading them.

    Raises:
        InvalidInput: an id that is malformed or names nothing in the organization.
        PermissionDenied: a team outside the actor's reach, or (CHECK_ROLES, for someone
            new) a role the actor may not grant in that team (see require_change_allowed).
    """
    org = actor.organization_id
    problems: dict[str, str] = {}
    team = None
    scope = actor.team_scope(permission)
    if default_team and team_id is None and scope is not None and len(scope) == 1:
        team_id = str(next(iter(scope)))
    if team_id is not None:
        wanted = parse_id(team_id)
        if wanted is None:
            team = None
        elif known is not None:
            team = known.teams.get(wanted)
        else:
            team = db.get(Team, wanted)
        if team is None or team.organization_id != org:
            problems["team_id"] = f"{team_id!r} is not a team"
            team = None
    groups = _load(
        db, Group, org, "group_ids", group_ids, problems, known.groups if known else None
    )
    roles = _load(db, Role, org, "role_ids", role_ids, problems, known.roles if known else None)
    if problems:
        raise InvalidInput("Some teams, groups or roles are not valid.", fields=problems)
    if scope is not None and (team is None or team.id not in scope):
        message = "You may only put users in your own teams."
        raise PermissionDenied(message, code="permission_denied", fields={"team_id": message})
    if check_roles:
        require_change_allowed(
            actor, user=None, held=[], team_after=team.id if team else None, roles_after=roles
        )
    return Membership(team=team, groups=groups, roles=roles)


def _load(
    db: Session,
    model: type[Linked],
    org: int,
    field: str,
    values: Sequence[str],
    problems: dict[str, str],
    known: dict[int, Linked] | None = None,
) -> list[Linked]:
    ids = _ids(field, values, problems)
    if known is not None:
        found = {i: known[i] for i in ids if i in known}
    elif ids:
        found = {
            row.id: row
            for row in db.scalars(
                select(model).where(model.organization_id == org, model.id.in_(ids))
            )
        }
    else:
        found = {}
    for index, value in enumerate(values):
        if (wanted := parse_id(value)) is not None and wanted not in found:
            problems[f"{field}[{index}]"] = f"'{value}' is not a {field[:-4]}"
    return [found[i] for i in dict.fromkeys(ids) if i in found]


def require_change_allowed(
    actor: Actor,
    *,
    user: User | None,
    held: Sequence[Role],
    team_after: int | None,
    roles_after: Sequence[Role],
) -> None:
    """Refuse a change of USER's team and roles (USER None: someone new) that the actor
    may not make: its own, or a role given or taken beyond the actor's own grant over the
    user (access.rules.membership_change_problem).

    Raises:
        PermissionDenied: naming the field at fault (role_ids or team_id).
    """
    problem = membership_change_problem(
        actor,
        user_id=user.id if user is not None else None,
        team_before=user.team_id if user is not None else None,
        roles_before=[role_grant(role) for role in held],
        team_after=team_after,
        roles_after=[role_grant(role) for role in roles_after],
    )
    if problem is not None:
        field, message = problem
        raise PermissionDenied(message, code="permission_denied", fields={field: message})


def replace_links(
    db: Session,
    user: User,
    *,
    team: Team | bool | None = False,
    groups: Sequence[Group] | None = None,
    roles: Sequence[Role] | None = None,
) -> None:
    """Set what is given (team=False: keep the team); drop the links no longer wanted."""
    if team is not False:
        user.team_id = team.id if isinstance(team, Team) else None
    if groups is not None:
        db.execute(delete(UserGroup).where(UserGroup.user_id == user.id))
        db.add_all(
            UserGroup(organization_id=user.organization_id, user_id=user.id, group_id=g.id)
            for g in groups
        )
    if roles is not None:
        db.execute(delete(UserRole).where(UserRole.user_id == user.id))
        db.add_all(
            UserRole(organization_id=user.organization_id, user_id=user.id, role_id=r.id)
            for r in roles
        )
    db.flush()


def attach(db: Session, user: User, membership: Membership) -> None:
    """Give USER the membership's team, groups and roles."""
    if membership.team is not None:
        user.team_id = membership.team.id
    for group in membership.groups:
        db.add(UserGroup(organization_id=user.organization_id, user_id=user.id, group_id=group.id))
    for role in membership.roles:
        db.add(UserRole(organization_id=user.organization_id, user_id=user.id, role_id=role.id))
    db.flush()
