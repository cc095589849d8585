"""/api/v1/roles, /api/v1/teams, /api/v1/groups: manage them (settings.manage)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from userdesk.access import admin
from userdesk.access.admin import Grouping, NamedRead, RoleBody, RoleRead
from userdesk.access.models import Group, Role, Team
from userdesk.access.rules import Permission, RoleScope
from userdesk.web.api.params import NameText
from userdesk.web.deps import CurrentActor, DbSession
from userdesk.web.inputs import PathId

roles = APIRouter(prefix="/roles", tags=["roles"])
teams = APIRouter(prefix="/teams", tags=["teams"])
groups = APIRouter(prefix="/groups", tags=["groups"])

DESCRIPTION_MAX = 500


class NameBody(BaseModel):
    name: NameText


class RoleCreate(BaseModel):
    name: NameText
    permissions: list[Permission] = Field(default_factory=list, max_length=len(Permission))
    scope: RoleScope = RoleScope.ORGANIZATION
    description: str = Field(default="", max_length=DESCRIPTION_MAX)

    def body(self) -> RoleBody:
        return RoleBody(
            name=self.name,
            permissions=[p.value for p in self.permissions],
            scope=self.scope.value,
            description=self.description,
        )


class RoleUpdate(BaseModel):
    name: NameText | None = None
    permissions: list[Permission] | None = Field(default=None, max_length=len(Permission))
    scope: RoleScope | None = None
    description: str | None = Field(default=None, max_length=DESCRIPTION_MAX)

    def body(self) -> RoleBody:
        return RoleBody(
            name=self.name,
            permissions=None if self.permissions is None else [p.value for p in self.permissions],
            scope=None if self.scope is None else self.scope.value,
            description=self.description,
        )


@roles.get("", response_model=list[RoleRead])
async def list_roles(db: DbSession, actor: CurrentActor) -> list[RoleRead]:
    return [RoleRead.of(r) for r in admin.list_named(db, actor=actor, model=Role)]


@roles.post("", response_model=RoleRead, status_code=201)
async def create_role(body: RoleCreate, db: DbSession, actor: CurrentActor) -> RoleRead:
    """A custom role: `{"name", "permissions": [...], "scope": "organization"|"team"}`."""
    return RoleRead.of(admin.create_role(db, actor=actor, body=body.body()))


@roles.patch("/{role_id}", response_model=RoleRead)
async def update_role(
    role_id: PathId, body: RoleUpdate, db: DbSession, actor: CurrentActor
) -> RoleRead:
    """Change a custom role; holders get the change on their next request."""
    return RoleRead.of(admin.update_role(db, actor=actor, role_id=role_id, body=body.body()))


@roles.delete("/{role_id}", status_code=204)
async def delete_role(role_id: PathId, db: DbSession, actor: CurrentActor) -> Response:
    """A custom role only; its holders lose it."""
    admin.delete(db, actor=actor, model=Role, item_id=role_id)
    return Response(status_code=204)


def _named_routes(router: APIRouter, model: type[Grouping], noun: str) -> None:
    @router.get("", response_model=list[NamedRead], name=f"list_{noun}s")
    async def list_items(db: DbSession, actor: CurrentActor) -> list[NamedRead]:
        return [
            NamedRead(id=str(i.id), name=i.name)
            for i in admin.list_named(db, actor=actor, model=model)
        ]

    @router.post("", response_model=NamedRead, status_code=201, name=f"create_{noun}")
    async def create_item(body: NameBody, db: DbSession, actor: CurrentActor) -> NamedRead:
        item = admin.create_named(db, actor=actor, model=model, name=body.name)
        return NamedRead(id=str(item.id), name=item.name)

    @router.patch("/{item_id}", response_model=NamedRead, name=f"rename_{noun}")
    async def rename_item(
        item_id: PathId, body: NameBody, db: DbSession, actor: CurrentActor
    ) -> NamedRead:
        item = admin.rename(db, actor=actor, model=model, item_id=item_id, name=body.name)
        return NamedRead(id=str(item.id), name=item.name)

    @router.delete("/{item_id}", status_code=204, name=f"delete_{noun}")
    async def delete_item(item_id: PathId, db: DbSession, actor: CurrentActor) -> Response:
        admin.delete(db, actor=actor, model=model, item_id=item_id)
        return Response(status_code=204)


_named_routes(teams, Team, "team")
_named_routes(groups, Group, "group")
