"""SCIM's two resource types, Users and Groups, behind one shape: read, create, replace,
patch and delete a resource from the SCIM payload, and show it as SCIM.

What differs between them (the model, the functions of scim.users and scim.groups, how a
group's version is computed) is said once per type here; the /scim/v2 routes and Bulk
(scim.bulk) both go through it, so that a Bulk operation is what its single request is.
Nothing of HTTP: the caller says where the resources are (Where).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from scim2_models import Context, PatchOp
from scim2_models import Group as ScimGroup
from scim2_models.exceptions import InvalidValueException
from sqlalchemy.orm import Session

from userdesk.access.rules import Actor
from userdesk.scim import extension
from userdesk.scim import groups as scim_groups
from userdesk.scim import users as scim_users
from userdesk.scim.filters import scim_id
from userdesk.scim.users import Resource

MAX_OPERATIONS = 1000  # operations of one PATCH


@dataclass(frozen=True)
class Where:
    """Where the resources are: SCIM's base URL (…/scim/v2) and the console's (emails)."""

    scim_base: str
    base_url: str

    def location(self, endpoint: str, resource_id: str | int) -> str:
        return f"{self.scim_base}/{endpoint}/{resource_id}"

    @property
    def users_base(self) -> str:
        return f"{self.scim_base}/Users"


def _operations(body: Any) -> list[Any]:
    """The Operations of a PatchOp's BODY (none when it has none)."""
    if not isinstance(body, dict):
        return []
    found = next((value for key, value in body.items() if key.lower() == "operations"), None)
    return found if isinstance(found, list) else []


def bounded_patch(body: Any) -> Any:
    """BODY, a PatchOp, unless it holds more than MAX_OPERATIONS operations.

    Raises:
        InvalidValueException: too many operations.
    """
    if isinstance(body, dict):
        operations = next(
            (value for key, value in body.items() if key.lower() == "operations"), None
        )
        if isinstance(operations, list) and len(operations) > MAX_OPERATIONS:
            raise InvalidValueException(
                detail=f"Operations: {len(operations)} is more than {MAX_OPERATIONS}."
            )
    return body


@dataclass(frozen=True)
class Kind:
    """One resource type: its endpoint ("Users"), its model, and the service functions
    its requests call (each raising as the scim.users or scim.groups function it wraps)."""

    endpoint: str
    model: Any
    _get: Callable[[Session, Actor, str], Any]
    # Each writer takes, last, what the request says of the custom fields' extension
    # (scim.extension: Users only; None for Groups, or when not sent).
    _create: Callable[[Session, Actor, Any, Where, Any], Any]
    _replace: Callable[[Session, Actor, str, Any, str | None, Where, Any], Any]
    _patch: Callable[[Session, Actor, str, Any, str | None, Where, Any], Any]
    _delete: Callable[[Session, Actor, str, str | None, Where], None]
    _show: Callable[[Session, Any, Where], Any]
    custom_fields: bool = False  # whether its resources carry the extension

    def get(self, db: Session, actor: Actor, resource_id: str) -> Any:
        return self._get(db, actor, resource_id)

    def create(self, db: Session, actor: Actor, body: Any, where: Where) -> Any:
        custom = None
        if self.custom_fields:
            body, custom = extension.split_resource(body)
        data = self.model.model_validate(body, scim_ctx=Context.RESOURCE_CREATION_REQUEST)
        return self._create(db, actor, data, where, custom)

    def change(
        self,
        db: Session,
        actor: Actor,
        resource_id: str,
        body: Any,
        if_match: str | None,
        where: Where,
        *,
        patch: bool,
    ) -> Any:
        """PATCH (BODY a PatchOp) or, PATCH false, PUT (BODY the whole resource)."""
        if patch:
            custom_ops: list[tuple[str, str | None, Any]] = []
            body = bounded_patch(body)
            if self.custom_fields:
                body, custom_ops = extension.split_patch(body)
            operations = None
            if not custom_ops or _operations(body):
                operations = PatchOp[self.model].model_validate(  # type: ignore[name-defined]
                    body, scim_ctx=Context.RESOURCE_PATCH_REQUEST
                )
            return self._patch(db, actor, resource_id, operations, if_match, where, custom_ops)
        custom = None
        if self.custom_fields:
            body, custom = extension.split_resource(body)
        data = self.model.model_validate(body, scim_ctx=Context.RESOURCE_REPLACEMENT_REQUEST)
        return self._replace(db, actor, resource_id, data, if_match, where, custom)

    def delete(
        self, db: Session, actor: Actor, resource_id: str, if_match: str | None, where: Where
    ) -> None:
        self._delete(db, actor, resource_id, if_match, where)

    def show(self, db: Session, found: Any, where: Where) -> Any:
        """FOUND (a user or a group) as its SCIM resource, meta.version included."""
        return self._show(db, found, where)

    def version(self, db: Session, found: Any) -> str:
        """FOUND's meta.version (its ETag)."""
        if self.endpoint == "Users":
            return scim_users.version_tag(found)
        return scim_groups.version_tag(found, scim_groups.member_ids(db, found))


USERS = Kind(
    "Users",
    Resource,
    lambda db, actor, user_id: scim_users.get_user(db, actor=actor, user_id=user_id),
    lambda db, actor, data, where, custom: scim_users.create_user(
        db, actor=actor, resource=data, base_url=where.base_url, custom=custom
    ),
    lambda db, actor, user_id, data, if_match, where, custom: scim_users.replace_user(
        db,
        actor=actor,
        user_id=user_id,
        resource=data,
        if_match=if_match,
        base_url=where.base_url,
        custom=custom,
    ),
    lambda db, actor, user_id, patch, if_match, where, custom: scim_users.patch_user(
        db,
        actor=actor,
        user_id=user_id,
        patch=patch,
        if_match=if_match,
        location=where.location("Users", scim_id(user_id) or 0),
        base_url=where.base_url,
        custom=custom,
    ),
    lambda db, actor, user_id, if_match, where: scim_users.delete_user(
        db, actor=actor, user_id=user_id, if_match=if_match, base_url=where.base_url
    ),
    lambda db, user, where: scim_users.to_resource(user, location=where.location("Users", user.id)),
    custom_fields=True,
)

GROUPS = Kind(
    "Groups",
    ScimGroup,
    lambda db, actor, group_id: scim_groups.get_group(db, actor=actor, group_id=group_id),
    lambda db, actor, data, where, _custom: scim_groups.create_group(
        db, actor=actor, resource=data, base_url=where.base_url
    ),
    lambda db, actor, group_id, data, if_match, where, _custom: scim_groups.replace_group(
        db,
        actor=actor,
        group_id=group_id,
        resource=data,
        if_match=if_match,
        base_url=where.base_url,
    ),
    lambda db, actor, group_id, patch, if_match, where, _custom: scim_groups.patch_group(
        db,
        actor=actor,
        group_id=group_id,
        patch=patch,
        if_match=if_match,
        location=where.location("Groups", scim_id(group_id) or 0),
        users_base=where.users_base,
        base_url=where.base_url,
    ),
    lambda db, actor, group_id, if_match, where: scim_groups.delete_group(
        db, actor=actor, group_id=group_id, if_match=if_match
    ),
    lambda db, group, where: scim_groups.to_resource(
        db, group, location=where.location("Groups", group.id), users_base=where.users_base
    ),
)

KINDS = {kind.endpoint: kind for kind in (USERS, GROUPS)}
