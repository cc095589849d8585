"""/api/v1/user-fields: the organization's user profile schema. Reading takes
`users.read`; every change takes `settings.manage`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from userdesk.users import fields
from userdesk.users.field_schemas import (
    UserFieldCreate,
    UserFieldList,
    UserFieldRead,
    UserFieldUpdate,
)
from userdesk.web.deps import CurrentActor, DbSession
from userdesk.web.inputs import PathId

router = APIRouter(prefix="/user-fields", tags=["user fields"])


class UserFieldDeleted(BaseModel):
    """What DELETE did: archived the field (values kept), or purged it with its values."""

    id: str
    key: str
    purged: bool
    values_deleted: int


@router.get("", response_model=UserFieldList)
async def list_user_fields(
    db: DbSession,
    actor: CurrentActor,
    archived: Annotated[bool, Query(description="Archived fields too.")] = True,
) -> UserFieldList:
    """The organization's fields in their order (`position`, then age)."""
    found = fields.list_fields(db, actor=actor, archived=archived)
    return UserFieldList(items=[UserFieldRead.of(f) for f in found])


@router.post("", response_model=UserFieldRead, status_code=201)
async def create_user_field(
    data: UserFieldCreate, db: DbSession, actor: CurrentActor
) -> UserFieldRead:
    """Add a field. Its `key` names it in `attributes`, in the query language
    (`plan:pro`, `seats:>10`, `has:plan`) and in exports, and never changes."""
    return UserFieldRead.of(fields.create_field(db, actor=actor, data=data))


@router.get("/{field_id}", response_model=UserFieldRead)
async def get_user_field(field_id: PathId, db: DbSession, actor: CurrentActor) -> UserFieldRead:
    return UserFieldRead.of(fields.get_field(db, actor=actor, field_id=field_id))


@router.patch("/{field_id}", response_model=UserFieldRead)
async def update_user_field(
    field_id: PathId, data: UserFieldUpdate, db: DbSession, actor: CurrentActor
) -> UserFieldRead:
    """Change the settings given. A new `type` (or fewer `options`, narrower limits)
    converts the values there are; when some would not convert, a 409 counts them,
    unless `drop_unconvertible` is true (they are then removed)."""
    return UserFieldRead.of(fields.update_field(db, actor=actor, field_id=field_id, data=data))


@router.post("/{field_id}/restore", response_model=UserFieldRead)
async def restore_user_field(field_id: PathId, db: DbSession, actor: CurrentActor) -> UserFieldRead:
    """Bring an archived field back, with its values."""
    return UserFieldRead.of(fields.restore_field(db, actor=actor, field_id=field_id))


@router.delete("/{field_id}", response_model=UserFieldDeleted)
async def delete_user_field(
    field_id: PathId,
    db: DbSession,
    actor: CurrentActor,
    purge: Annotated[
        bool,
        Query(
            description="Delete the field and every value of it for good (else: archive).",
        ),
    ] = False,
) -> UserFieldDeleted:
    """Archive the field: its values stay, hidden and not writable, until it is restored
    or purged. With `purge=true`, delete it and its values for good."""
    if purge:
        field = fields.get_field(db, actor=actor, field_id=field_id)
        key = field.key
        deleted = fields.purge_field(db, actor=actor, field_id=field_id)
        return UserFieldDeleted(id=str(field_id), key=key, purged=True, values_deleted=deleted)
    field = fields.archive_field(db, actor=actor, field_id=field_id)
    return UserFieldDeleted(id=str(field.id), key=field.key, purged=False, values_deleted=0)
