"""/api/v1/users/{id}/...: the retention actions of the churn card (besides the
re-engagement and verification emails): resend the invitation, add to a group, and an
agent's outreach."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from userdesk.invitations import service as invitations
from userdesk.invitations.schemas import InvitationRead
from userdesk.outreach import service as outreach
from userdesk.outreach.schemas import AgentChoice, OutreachCreate, OutreachRead, OutreachReassign
from userdesk.users import groups
from userdesk.users import service as users
from userdesk.users.schemas import UserRead, loaded_user_view
from userdesk.validation import ID_PATTERN
from userdesk.web.deps import CurrentActor, DbSession, SettingsDep
from userdesk.web.inputs import PathId
from userdesk.web.json import JSON

# Included before the users router, whose POST /users/{id}/{action} would take these paths.
router = APIRouter(prefix="/users", tags=["churn"])


@router.post("/{user_id:int}/invitation/resend", response_model=InvitationRead)
async def resend_invitation(
    user_id: PathId, db: DbSession, actor: CurrentActor, settings: SettingsDep
) -> InvitationRead:
    """Resend the user's pending invitation: a new link, the old one dies at once; a 409
    when the user has none (never invited, or it was accepted or revoked)."""
    invitation = invitations.resend_for_user(
        db, actor=actor, user_id=user_id, base_url=settings.base_url
    )
    return invitations.read(invitation)


class GroupAdd(BaseModel):
    group_id: str = Field(
        json_schema_extra={"pattern": ID_PATTERN},  # the service names a bad one
        description="A group of the organization.",
    )


@router.post("/{user_id:int}/groups", response_model=None, responses={200: {"model": UserRead}})
async def add_to_group(user_id: PathId, body: GroupAdd, db: DbSession, actor: CurrentActor) -> JSON:
    """Add the user to one more group (users.update over the user); 409 when in it already."""
    groups.add_to_group(db, actor=actor, user_id=user_id, group_id=body.group_id)
    user = users.get_user(db, actor=actor, user_id=user_id)
    return JSON(loaded_user_view(user), headers={"ETag": f'W/"{user.version}"'})


@router.get("/{user_id:int}/outreach", response_model=list[OutreachRead])
async def list_outreach(user_id: PathId, db: DbSession, actor: CurrentActor) -> list[OutreachRead]:
    """The user's outreach assignments, newest first, each agent Online or Away now."""
    return outreach.read(db, outreach.of_user(db, actor=actor, user_id=user_id))


@router.get("/{user_id:int}/outreach/agents", response_model=list[AgentChoice])
async def outreach_agents(user_id: PathId, db: DbSession, actor: CurrentActor) -> list[AgentChoice]:
    """The support agents you may ask to reach out to the user, Online or Away now."""
    return outreach.agents(db, actor=actor, user_id=user_id)


@router.post("/{user_id:int}/outreach", response_model=OutreachRead, status_code=201)
async def assign_outreach(
    user_id: PathId, body: OutreachCreate, db: DbSession, actor: CurrentActor, settings: SettingsDep
) -> OutreachRead:
    """Ask a support agent (the Agent role, within your reach) to reach out to the user; the
    agent is emailed. The user's churn reasons now are kept with it. 409 while another
    outreach of the user is open."""
    row = outreach.assign(
        db,
        actor=actor,
        user_id=user_id,
        agent_id=body.agent_id,
        note=body.note,
        base_url=settings.base_url,
    )
    return outreach.read(db, [row])[0]


@router.post("/{user_id:int}/outreach/{assignment_id}/reassign", response_model=OutreachRead)
async def reassign_outreach(
    user_id: PathId,
    assignment_id: PathId,
    body: OutreachReassign,
    db: DbSession,
    actor: CurrentActor,
    settings: SettingsDep,
) -> OutreachRead:
    """Give the open outreach to another agent, who is emailed."""
    row = outreach.reassign(
        db,
        actor=actor,
        user_id=user_id,
        assignment_id=assignment_id,
        agent_id=body.agent_id,
        note=body.note,
        base_url=settings.base_url,
    )
    return outreach.read(db, [row])[0]


@router.post("/{user_id:int}/outreach/{assignment_id}/done", response_model=OutreachRead)
async def outreach_done(
    user_id: PathId, assignment_id: PathId, db: DbSession, actor: CurrentActor
) -> OutreachRead:
    """Mark the outreach done: the agent it is assigned to, or whoever may update the user."""
    row = outreach.mark_done(db, actor=actor, user_id=user_id, assignment_id=assignment_id)
    return outreach.read(db, [row])[0]
