"""/api/v1/invitations: invite people, track, resend and revoke invitations."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter

from userdesk.invitations import service as invitations
from userdesk.invitations.schemas import InvitationCreate, InvitationRead, InvitationResult
from userdesk.web.deps import CurrentActor, DbSession, SettingsDep
from userdesk.web.inputs import PathId

router = APIRouter(prefix="/invitations", tags=["invitations"])


@router.post("", response_model=InvitationResult, status_code=201)
async def invite(
    data: InvitationCreate, db: DbSession, actor: CurrentActor, settings: SettingsDep
) -> InvitationResult:
    """Invite one or many people; emails already in the organization come back in
    `existing` and are not invited again."""
    return invitations.invite(db, actor=actor, data=data, base_url=settings.base_url)


@router.get("", response_model=list[InvitationRead])
async def list_invitations(
    db: DbSession,
    actor: CurrentActor,
    status: Literal["pending", "accepted", "expired", "revoked"] | None = None,
) -> list[InvitationRead]:
    """Newest first; `status` is pending, accepted, expired or revoked."""
    found = invitations.list_invitations(db, actor=actor, status=status)
    return [invitations.read(i) for i in found]


@router.post("/{invitation_id}/resend", response_model=InvitationRead)
async def resend(
    invitation_id: PathId, db: DbSession, actor: CurrentActor, settings: SettingsDep
) -> InvitationRead:
    """Email a new link; the old one stops working at once."""
    invitation = invitations.resend(
        db, actor=actor, invitation_id=invitation_id, base_url=settings.base_url
    )
    return invitations.read(invitation)


@router.post("/{invitation_id}/revoke", response_model=InvitationRead)
async def revoke(invitation_id: PathId, db: DbSession, actor: CurrentActor) -> InvitationRead:
    """Kill the link at once."""
    return invitations.read(invitations.revoke(db, actor=actor, invitation_id=invitation_id))
