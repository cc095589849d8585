"""Putting a user in one more group: a retention action of the churn card."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from userdesk.access import service as access
from userdesk.access.models import Group
from userdesk.access.rules import Actor, Permission
from userdesk.audit import service as audit
from userdesk.errors import Conflict, InvalidInput
from userdesk.users import service as users
from userdesk.users.membership import resolve
from userdesk.users.models import User, UserGroup


def group_names(db: Session, user: User) -> list[str]:
    return list(
        db.scalars(
            select(Group.name)
            .join(UserGroup, UserGroup.group_id == Group.id)
            .where(UserGroup.user_id == user.id)
            .order_by(Group.name)
        )
    )


def add_to_group(db: Session, *, actor: Actor, user_id: int, group_id: str) -> Group:
    """Add the user to the group, checked as an edit of the user's groups is (audited).

    Raises:
        PermissionDenied: the actor may not update the user, or the user holds more.
        NotFound: no such user within the actor's reach.
        InvalidInput: GROUP_ID is not a group of the organization (field group_id).
        Conflict: the user is in the group already.
    """
    user = users.user_in_reach(db, actor=actor, user_id=user_id, permission=Permission.USERS_UPDATE)
    access.require_not_weaker(db, actor, user)
    try:
        membership = resolve(
            db,
            actor=actor,
            team_id=str(user.team_id) if user.team_id is not None else None,
            group_ids=[group_id],
            role_ids=[],
            default_team=False,
            permission=Permission.USERS_UPDATE,
        )
    except InvalidInput as problem:
        raise InvalidInput(
            f"'{group_id}' is not a group.",
            fields={"group_id": problem.fields.get("group_ids[0]", f"'{group_id}' is wrong")},
        ) from None
    (group,) = membership.groups
    before = group_names(db, user)
    if group.name in before:
        raise Conflict(f"{user.name} is in {group.name} already.", code="user.in_group")
    db.add(UserGroup(organization_id=user.organization_id, user_id=user.id, group_id=group.id))
    user.version += 1
    db.flush()
    audit.record(
        db,
        actor=actor,
        action="user.added_to_group",
        target_type="user",
        target_id=user.id,
        changes={"groups": {"from": before, "to": sorted([*before, group.name])}},
    )
    return group
