"""/api/v1/users: list and read users."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from userdesk.users import service as users
from userdesk.users.schemas import UserPage, UserRead
from userdesk.web.deps import CurrentActor, DbSession

router = APIRouter(prefix="/users", tags=["users"])


@router.get("", response_model=UserPage)
def list_users(
    db: DbSession,
    actor: CurrentActor,
    sort: str = "name",
    limit: Annotated[int, Query()] = users.DEFAULT_PAGE_SIZE,
    cursor: str | None = None,
) -> UserPage:
    """One page of users; pass `next_cursor` back as `cursor` for the next one."""
    return users.list_users(db, actor=actor, sort=sort, limit=limit, cursor=cursor)


@router.get("/{user_id}", response_model=UserRead)
def get_user(user_id: int, db: DbSession, actor: CurrentActor, response: Response) -> UserRead:
    """One user, with an `ETag` to send back as `If-Match` when editing."""
    user = users.get_user(db, actor=actor, user_id=user_id)
    response.headers["ETag"] = f'W/"{user.version}"'
    return UserRead.of(user)
