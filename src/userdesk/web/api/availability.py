"""/api/v1/business-hours and a support agent's own: what Online and Away follow."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body

from userdesk.availability import service as availability
from userdesk.web.deps import CurrentActor, DbSession
from userdesk.web.inputs import PathId
from userdesk.web.json import JSON

router = APIRouter(tags=["availability"])

EXAMPLE = {
    "time_zone": "Europe/Paris",
    "weekly": {"mon": [["09:00", "12:30"], ["13:30", "18:00"]], "sat": [["10:00", "14:00"]]},
    "holidays": ["2026-12-25"],
}


@router.get("/business-hours", response_model=None)
async def organization_hours(db: DbSession, actor: CurrentActor) -> JSON:
    """The organization's business hours (Monday to Friday, 9 to 5 UTC until set)."""
    return JSON(availability.read_organization_hours(db, actor=actor).to_json())


@router.put("/business-hours", response_model=None)
async def set_organization_hours(
    db: DbSession, actor: CurrentActor, body: dict[str, Any] = Body(examples=[EXAMPLE])
) -> JSON:
    """Replace the organization's business hours (settings.manage)."""
    return JSON(availability.set_organization_hours(db, actor=actor, data=body).to_json())


@router.put("/users/{user_id:int}/business-hours", response_model=None)
async def set_agent_hours(
    user_id: PathId,
    db: DbSession,
    actor: CurrentActor,
    body: dict[str, Any] | None = Body(default=None, examples=[EXAMPLE]),
) -> JSON:
    """A support agent's own business hours; null goes back to the organization's."""
    user = availability.set_agent_hours(db, actor=actor, user_id=user_id, data=body)
    return JSON({"user_id": str(user.id), "business_hours": user.business_hours})
