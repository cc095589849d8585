"""/api/v1/users: list, count and read users."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from userdesk.users import service as users
from userdesk.users.schemas import (
    UserCounts,
    UserCreate,
    UserPageRead,
    UserRead,
    loaded_user_view,
)
from userdesk.web.deps import CurrentActor, DbSession, SettingsDep
from userdesk.web.json import JSON

router = APIRouter(prefix="/users", tags=["users"])

QueryParam = Annotated[
    str,
    Query(
        description=(
            'The query language: free text and filters, e.g. `anna status:active team:"Support '
            'EU" verified:no login:never seen:>30d`.'
        )
    ),
]


@router.get("", response_model=None, responses={200: {"model": UserPageRead}})
async def list_users(
    db: DbSession,
    actor: CurrentActor,
    q: QueryParam = "",
    sort: Annotated[
        str, Query(description="name, email, created or seen; a leading - reverses it.")
    ] = "name",
    limit: Annotated[int, Query()] = users.DEFAULT_PAGE_SIZE,
    cursor: str | None = None,
) -> JSON:
    """One page of users; pass `next_cursor` back as `cursor` for the next one."""
    return JSON(users.list_users(db, actor=actor, q=q, sort=sort, limit=limit, cursor=cursor))


@router.get("/counts", response_model=UserCounts)
async def count_users(db: DbSession, actor: CurrentActor, q: QueryParam = "") -> UserCounts:
    """Users per status for the query (its status term left out), in all, and without login.

    A count that reaches 10,000 stops there and says `"capped": true`.
    """
    return users.count_users(db, actor=actor, q=q)


@router.post("", status_code=201, response_model=None, responses={201: {"model": UserRead}})
async def create_user(
    data: UserCreate, db: DbSession, actor: CurrentActor, settings: SettingsDep
) -> JSON:
    """Add an active user; `send_welcome_email` emails a link to choose a password."""
    user = users.create_user(db, actor=actor, data=data, base_url=settings.base_url)
    return JSON(loaded_user_view(users.get_user(db, actor=actor, user_id=user.id)), status_code=201)


@router.post("/{user_id}/verification-email", status_code=202, response_model=None)
async def send_verification_email(
    user_id: int, db: DbSession, actor: CurrentActor, settings: SettingsDep
) -> JSON:
    """Email the user a new link to confirm their address; the previous link dies."""
    user = users.send_verification_email(
        db, actor=actor, user_id=user_id, base_url=settings.base_url
    )
    return JSON({"status": "queued", "email": user.email}, status_code=202)


@router.get("/{user_id}", response_model=None, responses={200: {"model": UserRead}})
async def get_user(user_id: int, db: DbSession, actor: CurrentActor) -> JSON:
    """One user, with an `ETag` to send back as `If-Match` when editing."""
    user = users.get_user(db, actor=actor, user_id=user_id)
    return JSON(loaded_user_view(user), headers={"ETag": f'W/"{user.version}"'})
