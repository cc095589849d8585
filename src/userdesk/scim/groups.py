"""SCIM Groups mapped to Userdesk's groups, through the same services as the console.

A group's name is its displayName; its members are users (value: the user's SCIM id).
Creating, renaming and deleting a group go through access.admin; adding or removing a
member is an edit of that user's groups (users.groups.add_to_group, users.service.
update_user): audited with the token's name, out of reach for users who hold more than
the provisioning role (an Administrator).
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass

from scim2_models import Group as ScimGroup
from scim2_models import GroupMember, Meta, PatchOp, Schema
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from userdesk.access import admin
from userdesk.access import service as access
from userdesk.access.models import Group
from userdesk.access.rules import Actor, Grant, Permission
from userdesk.audit import service as audit
from userdesk.db.paging import SortKey
from userdesk.errors import InvalidInput, NotFound, PreconditionFailed
from userdesk.scim import cursors, filters
from userdesk.scim.users import DEFAULT_COUNT, Cursoring, check_external_id, page_by_cursor
from userdesk.users import groups as user_groups
from userdesk.users import service as users
from userdesk.users.models import User, UserGroup
from userdesk.users.rules import UserStatus
from userdesk.users.schemas import UserUpdate

MAX_COUNT = 1000
MEMBERS_NAMED = 10  # unknown members an error names (then "and N more")


@dataclass(frozen=True)
class Page:
    total: int
    start_index: int
    groups: list[Group]


def _group_manager(actor: Actor) -> Actor:
    """ACTOR allowed to create, rename and delete groups, which the provisioning role
    does and settings.manage guards; nothing else of settings is reached from SCIM."""
    return dataclasses.replace(actor, grants=(Grant(frozenset({Permission.SETTINGS_MANAGE})),))


def member_ids(db: Session, group: Group) -> list[int]:
    """The group's members that SCIM sees (not deleted users), by id."""
    return list(
        db.scalars(
            select(UserGroup.user_id)
            .join(User, User.id == UserGroup.user_id)
            .where(UserGroup.group_id == group.id, User.status != UserStatus.DELETED.value)
            .order_by(UserGroup.user_id)
        )
    )


def version_tag(group: Group, members: list[int]) -> str:
    """The group's meta.version: from its name and members (a group has no version column)."""
    digest = hashlib.sha256(f"{group.name}|{group.external_id}|{members}".encode()).hexdigest()
    return f'W/"{digest[:16]}"'


def to_resource(db: Session, group: Group, *, location: str, users_base: str) -> ScimGroup:
    members = member_ids(db, group)
    return ScimGroup(
        id=str(group.id),
        external_id=group.external_id,
        display_name=group.name,
        members=[
            GroupMember.model_validate(
                {
                    "value": str(user_id),
                    "$ref": f"{users_base}/{user_id}",
                    "type": "User",
                }
            )
            for user_id in members
        ]
        or None,
        meta=Meta(
            resource_type="Group",
            created=group.created_at,
            last_modified=group.created_at,
            location=location,
            version=version_tag(group, members),
        ),
    )


def get_group(db: Session, *, actor: Actor, group_id: str, for_update: bool = False) -> Group:
    """The group with SCIM id GROUP_ID (FOR_UPDATE: its row locked, as users.get_user).

    Raises PermissionDenied (no users.read) or NotFound."""
    access.require(actor, Permission.USERS_READ)
    group = None
    number = filters.scim_id(group_id)
    if number is not None:
        query = select(Group).where(
            Group.id == number, Group.organization_id == actor.organization_id
        )
        if for_update:
            query = query.with_for_update(of=Group).execution_options(populate_existing=True)
        group = db.scalar(query)
    if group is None:
        raise NotFound(f"No group {group_id}.", code="group.not_found")
    return group


def search(
    db: Session,
    *,
    actor: Actor,
    filter_: str | None,
    start_index: int = 1,
    count: int | None = None,
    descending: bool = False,
) -> Page:
    """One page of the groups matching FILTER_, by name.

    Raises:
        PermissionDenied: no users.read.
        InvalidFilterException: a bad filter.
    """
    access.require(actor, Permission.USERS_READ)
    where = [Group.organization_id == actor.organization_id]
    if filter_:
        where.append(filters.groups_where(filter_))
    start_index = max(start_index, 1)
    count = MAX_COUNT if count is None else max(0, min(count, MAX_COUNT))
    total = db.scalar(select(func.count()).select_from(Group).where(*where)) or 0
    if count == 0 or start_index > total:
        return Page(total, start_index, [])
    order = (Group.name.desc(), Group.id.desc()) if descending else (Group.name, Group.id)
    rows = db.scalars(
        select(Group).where(*where).order_by(*order).offset(start_index - 1).limit(count)
    ).all()
    return Page(total, start_index, list(rows))


# The order of a cursor-paged list of groups: by name (unique in an organization), then id.
SORTS = {
    descending: SortKey(
        f"scim-groups:{'-' if descending else ''}name", (Group.name, Group.id), descending
    )
    for descending in (False, True)
}


@dataclass(frozen=True)
class GroupCursorPage:
    total: int
    groups: list[Group]
    next_cursor: str | None
    previous_cursor: str | None


def cursor_search(
    db: Session,
    *,
    actor: Actor,
    filter_: str | None,
    cursor: str,
    count: int | None,
    descending: bool,
    cursoring: Cursoring,
) -> GroupCursorPage:
    """One page of the groups matching FILTER_ by name, cursor-paged (as users.cursor_search).

    Raises:
        PermissionDenied: no users.read.
        InvalidFilterException: a bad filter.
        InvalidCursorException, ExpiredCursorException: see scim.cursors.read.
    """
    access.require(actor, Permission.USERS_READ)
    where = [Group.organization_id == actor.organization_id]
    if filter_:
        where.append(filters.groups_where(filter_))
    key = SORTS[descending]
    total = db.scalar(select(func.count()).select_from(Group).where(*where)) or 0
    rows, next_cursor, previous_cursor = page_by_cursor(
        db,
        columns=[Group.id, Group.name],
        where=where,
        key=key,
        few=False,
        cursor=cursor,
        count=DEFAULT_COUNT if count is None else max(0, min(count, MAX_COUNT)),
        organization_id=actor.organization_id,
        query=cursors.query_digest("Groups", filter_ or "", key.name),
        cursoring=cursoring,
    )
    ids = [row[0] for row in rows]
    found = {group.id: group for group in db.scalars(select(Group).where(Group.id.in_(ids)))}
    return GroupCursorPage(total, [found[i] for i in ids], next_cursor, previous_cursor)


def _check_version(db: Session, group: Group, if_match: str | None) -> None:
    if if_match is None or if_match.strip() == "*":
        return
    tag = version_tag(group, member_ids(db, group))
    if tag not in [part.strip() for part in if_match.split(",")]:
        raise PreconditionFailed(
            f"Group {group.name} changed since {if_match} (now {tag}).",
            fields={"If-Match": f"{if_match} is not the current version"},
        )


def _wanted_members(db: Session, actor: Actor, resource: ScimGroup) -> set[int]:
    """The user ids RESOURCE lists as members.

    Raises:
        InvalidInput: a member that is not a user of the organization (field members).
    """
    wanted = {member.value for member in resource.members or [] if member.value}
    ids = {number for value in wanted if (number := filters.scim_id(value)) is not None}
    found = set(
        db.scalars(
            select(User.id).where(
                User.id.in_(ids),
                User.organization_id == actor.organization_id,
                User.status != UserStatus.DELETED.value,
            )
        )
    )
    unknown = sorted(wanted - {str(user_id) for user_id in found})
    if unknown:
        named = ", ".join(value[:40] for value in unknown[:MEMBERS_NAMED])
        more = f" and {len(unknown) - MEMBERS_NAMED} more" if len(unknown) > MEMBERS_NAMED else ""
        raise InvalidInput(
            "A member is not a user.", fields={"members": f"{named}{more} not found"}
        )
    return found


def create_group(db: Session, *, actor: Actor, resource: ScimGroup, base_url: str) -> Group:
    """A new group with its members.

    Raises:
        InvalidInput: no displayName, or a member that is not a user.
        Conflict: the name is taken.
        PermissionDenied: a member holds more than the provisioning role.
    """
    check_external_id(resource.external_id)
    wanted = _wanted_members(db, actor, resource)
    group = admin.create_named(
        db, actor=_group_manager(actor), model=Group, name=resource.display_name or ""
    )
    _set_external_id(db, actor, group, resource.external_id)
    _set_members(db, actor, group, wanted, base_url)
    return group


def group_schema() -> Schema:
    """The Group schema as Userdesk serves it: members without a display (not kept)."""
    schema = ScimGroup.to_schema()
    for attribute in schema.attributes or []:
        if attribute.name == "members":
            attribute.sub_attributes = [
                sub for sub in attribute.sub_attributes or [] if sub.name != "display"
            ]
    return schema


def _set_external_id(db: Session, actor: Actor, group: Group, external_id: str | None) -> None:
    if external_id == group.external_id:
        return
    before, group.external_id = group.external_id, external_id
    db.flush()
    audit.record(
        db,
        actor=actor,
        action="group.updated",
        target_type="group",
        target_id=group.id,
        changes={"external_id": {"from": before, "to": external_id}},
    )


def replace_group(
    db: Session,
    *,
    actor: Actor,
    group_id: str,
    resource: ScimGroup,
    if_match: str | None,
    base_url: str,
) -> Group:
    """Make the group what RESOURCE says (PUT): its name and its members."""
    group = get_group(db, actor=actor, group_id=group_id, for_update=True)
    _check_version(db, group, if_match)
    return _apply(db, actor, group, resource, base_url)


def patch_group(
    db: Session,
    *,
    actor: Actor,
    group_id: str,
    patch: PatchOp[ScimGroup],
    if_match: str | None,
    location: str,
    users_base: str,
    base_url: str,
) -> Group:
    """Apply a SCIM PATCH (members add and remove, displayName replace)."""
    group = get_group(db, actor=actor, group_id=group_id, for_update=True)
    _check_version(db, group, if_match)
    resource = to_resource(db, group, location=location, users_base=users_base)
    if not patch.patch(resource):
        return group
    return _apply(db, actor, group, resource, base_url)


def delete_group(db: Session, *, actor: Actor, group_id: str, if_match: str | None) -> None:
    """Delete the group (its users stay; they leave it)."""
    group = get_group(db, actor=actor, group_id=group_id, for_update=True)
    _check_version(db, group, if_match)
    admin.delete(db, actor=_group_manager(actor), model=Group, item_id=group.id)


def _apply(db: Session, actor: Actor, group: Group, resource: ScimGroup, base_url: str) -> Group:
    check_external_id(resource.external_id)
    wanted = _wanted_members(db, actor, resource)
    name = resource.display_name or ""
    if name != group.name:
        admin.rename(db, actor=_group_manager(actor), model=Group, item_id=group.id, name=name)
    _set_external_id(db, actor, group, resource.external_id)
    _set_members(db, actor, group, wanted, base_url)
    return group


def _set_members(db: Session, actor: Actor, group: Group, wanted: set[int], base_url: str) -> None:
    current = set(member_ids(db, group))
    for user_id in sorted(wanted - current):
        user_groups.add_to_group(db, actor=actor, user_id=user_id, group_id=str(group.id))
    for user_id in sorted(current - wanted):
        user = db.get_one(User, user_id)
        kept = db.scalars(
            select(UserGroup.group_id).where(
                UserGroup.user_id == user_id, UserGroup.group_id != group.id
            )
        ).all()
        users.update_user(
            db,
            actor=actor,
            user_id=user_id,
            data=UserUpdate(group_ids=[str(group_id) for group_id in kept]),
            version=user.version,
            base_url=base_url,
        )
