"""Managing roles, teams and groups (Settings and /api/v1/roles|teams|groups).

Managing them takes settings.manage. Built-in roles keep their names and permissions and
cannot be deleted; nobody makes, edits or deletes a role holding a permission they do not
hold organization-wide (a role's scope is part of what it grants).
Deleting a team leaves its members without a team; deleting a group drops it from its
members; deleting a role takes it from its holders (refused while it is the last
Administrator's only way to be one: built-ins are not deleted at all).
"""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from userdesk.access import service as access
from userdesk.access.models import Group, Role, RolePermission, Team
from userdesk.access.rules import ALL_PERMISSIONS, Actor, Permission, RoleScope, missing_to_define
from userdesk.audit import service as audit
from userdesk.errors import Conflict, InvalidInput, NotFound, PermissionDenied

NAME_MAX = 100
Named = TypeVar("Named", Team, Group, Role)
Grouping = TypeVar("Grouping", Team, Group)


class NameBody(BaseModel):
    name: str


class RoleBody(BaseModel):
    name: str | None = None
    permissions: list[str] | None = None
    scope: str | None = None  # organization | team
    description: str | None = None


class RoleRead(BaseModel):
    id: str
    name: str
    description: str
    scope: str
    builtin: bool
    permissions: list[str]

    @classmethod
    def of(cls, role: Role) -> RoleRead:
        return cls(
            id=str(role.id),
            name=role.name,
            description=role.description,
            scope=role.scope,
            builtin=role.builtin,
            permissions=role.permissions,
        )


class NamedRead(BaseModel):
    id: str
    name: str


def _name(db: Session, model: type[Named], org: int, name: str, current: int | None = None) -> str:
    name = name.strip()
    if not name:
        raise InvalidInput("A name is required.", fields={"name": "is required"})
    if len(name) > NAME_MAX:
        raise InvalidInput("The name is too long.", fields={"name": f"is longer than {NAME_MAX}"})
    # SQLite's lower() folds ASCII only: the exact name is looked for too ('Ö' twice).
    same = or_(model.name == name, func.lower(model.name) == name.lower())
    others = select(model.id).where(model.organization_id == org, same)
    if current is not None:
        others = others.where(model.id != current)
    taken = db.scalar(others.limit(1))
    if taken is not None:
        raise Conflict(
            f"'{name}' exists already.", code="name_taken", fields={"name": f"'{name}' is taken"}
        )
    return name


def _get(db: Session, model: type[Named], actor: Actor, item_id: int) -> Named:
    item = db.get(model, item_id)
    if item is None or item.organization_id != actor.organization_id:
        raise NotFound(f"No {model.__tablename__[:-1]} {item_id}.", code="not_found")
    return item


def list_named(db: Session, *, actor: Actor, model: type[Named]) -> list[Named]:
    """Raises PermissionDenied unless the actor may read users."""
    access.require(actor, Permission.USERS_READ)
    return list(
        db.scalars(
            select(model).where(model.organization_id == actor.organization_id).order_by(model.name)
        )
    )


def create_named(db: Session, *, actor: Actor, model: type[Grouping], name: str) -> Grouping:
    """A new team or group. Raises PermissionDenied, InvalidInput or Conflict (name)."""
    access.require(actor, Permission.SETTINGS_MANAGE)
    item = model(
        organization_id=actor.organization_id, name=_name(db, model, actor.organization_id, name)
    )
    db.add(item)
    db.flush()
    kind = model.__tablename__[:-1]
    audit.record(
        db,
        actor=actor,
        action=f"{kind}.created",
        target_type=kind,
        target_id=item.id,
        changes={"name": item.name},
    )
    return item


def rename(db: Session, *, actor: Actor, model: type[Named], item_id: int, name: str) -> Named:
    """Raises PermissionDenied, NotFound, InvalidInput or Conflict (name, a built-in role)."""
    access.require(actor, Permission.SETTINGS_MANAGE)
    item = _get(db, model, actor, item_id)
    if isinstance(item, Role) and item.builtin:
        raise Conflict(f"'{item.name}' is built in: its name stays.", code="role.builtin")
    old = item.name
    item.name = _name(db, model, actor.organization_id, name, current=item.id)
    db.flush()
    kind = model.__tablename__[:-1]
    audit.record(
        db,
        actor=actor,
        action=f"{kind}.renamed",
        target_type=kind,
        target_id=item.id,
        changes={"name": {"from": old, "to": item.name}},
    )
    return item


def delete(db: Session, *, actor: Actor, model: type[Named], item_id: int) -> None:
    """Raises PermissionDenied, NotFound, or Conflict for a built-in role."""
    access.require(actor, Permission.SETTINGS_MANAGE)
    item = _get(db, model, actor, item_id)
    if isinstance(item, Role):
        if item.builtin:
            raise Conflict(f"'{item.name}' is built in and cannot be deleted.", code="role.builtin")
        _require_holds(actor, item.permissions)
    kind = model.__tablename__[:-1]
    audit.record(
        db,
        actor=actor,
        action=f"{kind}.deleted",
        target_type=kind,
        target_id=item.id,
        changes={"name": item.name},
    )
    db.delete(item)
    db.flush()


def _permissions(values: list[str]) -> list[str]:
    unknown = [p for p in values if p not in ALL_PERMISSIONS]
    if unknown:
        allowed = ", ".join(sorted(ALL_PERMISSIONS))
        raise InvalidInput(
            f"Unknown permission '{unknown[0]}'.",
            fields={"permissions": f"'{unknown[0]}' is not one of {allowed}"},
        )
    return sorted(set(values))


def _require_holds(actor: Actor, permissions: list[str]) -> None:
    """A role is defined for the whole organization: managing one takes holding each of
    its permissions organization-wide (so nobody makes or widens one beyond their grant)."""
    lacking = missing_to_define(actor, permissions)
    if lacking:
        message = f"You cannot manage a role holding {', '.join(lacking)}, which you lack."
        raise PermissionDenied(message, code="permission_denied", fields={"permissions": message})


def _scope(value: str | None) -> str:
    scope = value or RoleScope.ORGANIZATION.value
    if scope not in (RoleScope.ORGANIZATION.value, RoleScope.TEAM.value):
        raise InvalidInput(
            f"Scope '{scope}' is not organization or team.",
            fields={"scope": f"'{scope}' is not organization or team"},
        )
    return scope


def create_role(db: Session, *, actor: Actor, body: RoleBody) -> Role:
    """A custom role. Raises PermissionDenied, InvalidInput or Conflict."""
    access.require(actor, Permission.SETTINGS_MANAGE)
    permissions = _permissions(body.permissions or [])
    _require_holds(actor, permissions)
    role = Role(
        organization_id=actor.organization_id,
        name=_name(db, Role, actor.organization_id, body.name or ""),
        description=(body.description or "").strip()[:500],
        scope=_scope(body.scope),
        builtin=False,
    )
    role.permission_rows = [
        RolePermission(organization_id=actor.organization_id, permission=p) for p in permissions
    ]
    db.add(role)
    db.flush()
    audit.record(
        db,
        actor=actor,
        action="role.created",
        target_type="role",
        target_id=role.id,
        changes={"name": role.name, "scope": role.scope, "permissions": permissions},
    )
    return role


def update_role(db: Session, *, actor: Actor, role_id: int, body: RoleBody) -> Role:
    """Change a custom role's name, description, scope or permissions (effective at once).

    Raises:
        PermissionDenied, NotFound, InvalidInput, Conflict (a built-in role, a taken name).
    """
    access.require(actor, Permission.SETTINGS_MANAGE)
    role = _get(db, Role, actor, role_id)
    if role.builtin:
        raise Conflict(f"'{role.name}' is built in: it stays as it is.", code="role.builtin")
    _require_holds(actor, role.permissions)
    changes: dict[str, object] = {}
    if body.name is not None:
        name = _name(db, Role, actor.organization_id, body.name, current=role.id)
        if name != role.name:
            changes["name"] = {"from": role.name, "to": name}
            role.name = name
    if body.scope is not None and _scope(body.scope) != role.scope:
        changes["scope"] = {"from": role.scope, "to": body.scope}
        role.scope = body.scope
    if body.description is not None:
        role.description = body.description.strip()[:500]
    if body.permissions is not None:
        permissions = _permissions(body.permissions)
        _require_holds(actor, permissions)
        if permissions != role.permissions:
            changes["permissions"] = {"from": role.permissions, "to": permissions}
            role.permission_rows = [
                RolePermission(organization_id=actor.organization_id, permission=p)
                for p in permissions
            ]
    db.flush()
    if changes:
        audit.record(
            db,
            actor=actor,
            action="role.updated",
            target_type="role",
            target_id=role.id,
            changes=changes,
        )
    return role
