"""/api/v1/me: the signed-in person's own account and sessions.

Only for a browser session (plus X-CSRF-Token on writes): an API key acts for no person,
so it has no "me". The password and the email change through the /me page, where the
current password is typed.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from userdesk.errors import PermissionDenied
from userdesk.users import account
from userdesk.users.models import User
from userdesk.users.rules import PASSWORD_MAX_LENGTH
from userdesk.web.deps import Auth, CurrentAuth, DbSession
from userdesk.web.inputs import PathId

router = APIRouter(prefix="/me", tags=["me"])


class MeRead(BaseModel):
    id: str
    email: str
    first_name: str
    last_name: str
    status: str
    email_verified: bool
    pending_email: str | None = Field(
        description="A new address waiting for its owner to follow the emailed link."
    )


class MeUpdate(BaseModel):
    first_name: str | None = None
    last_name: str | None = None


class SessionRead(BaseModel):
    id: str
    device: str = Field(description='The browser in short words, like "Chrome on Linux".')
    ip: str | None
    signed_in_at: datetime
    last_seen_at: datetime
    current: bool = Field(description="The session making this request.")
    impersonation: bool = Field(description="An administrator signed in as the person.")


def _person(found: Auth) -> User:
    """The signed-in person behind a browser session.

    Raises:
        PermissionDenied: the caller is an API key.
    """
    if found.user is None or found.session is None:
        raise PermissionDenied(
            "An API key acts for no person: /api/v1/me needs a signed-in browser session.",
            code="me.no_person",
        )
    return found.user


def _read(user: User) -> MeRead:
    return MeRead(
        id=str(user.id),
        email=user.email,
        first_name=user.first_name,
        last_name=user.last_name,
        status=user.status,
        email_verified=user.email_verified_at is not None,
        pending_email=user.pending_email,
    )


@router.get("", response_model=MeRead)
def read_me(found: CurrentAuth) -> MeRead:
    """The signed-in person."""
    return _read(_person(found))


@router.patch("", response_model=MeRead)
def update_me(data: MeUpdate, db: DbSession, found: CurrentAuth) -> MeRead:
    """Change one's own first and last name (the fields left out keep their value)."""
    user = _person(found)
    account.change_own_name(
        db,
        actor=found.actor,
        user=user,
        first_name=data.first_name if data.first_name is not None else user.first_name,
        last_name=data.last_name if data.last_name is not None else user.last_name,
    )
    return _read(user)


@router.get("/sessions", response_model=list[SessionRead])
def list_sessions(db: DbSession, found: CurrentAuth) -> list[SessionRead]:
    """One's live sessions, the most recently used first."""
    user = _person(found)
    views = account.list_own_sessions(
        db,
        actor=found.actor,
        user=user,
        current_session_id=found.session.id if found.session else None,
    )
    return [
        SessionRead(
            id=str(v.id),
            device=v.device,
            ip=v.ip,
            signed_in_at=v.signed_in_at,
            last_seen_at=v.last_seen_at,
            current=v.current,
            impersonation=v.impersonation,
        )
        for v in views
    ]


class EndSessionBody(BaseModel):
    current_password: str = Field(
        max_length=PASSWORD_MAX_LENGTH, description="One's password, typed again."
    )


@router.delete(
    "/sessions/{session_id}",
    status_code=204,
    responses={429: {"description": "Too many wrong passwords lately."}},
)
def end_session(
    session_id: PathId, body: EndSessionBody, db: DbSession, found: CurrentAuth
) -> Response:
    """Sign out one of one's other sessions, typing one's password again (refused while
    impersonating)."""
    user = _person(found)
    account.end_own_session(
        db,
        actor=found.actor,
        user=user,
        session_id=session_id,
        current_session_id=found.session.id if found.session else None,
        current_password=body.current_password,
    )
    return Response(status_code=204)
