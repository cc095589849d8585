"""/api/v1/events: the host product reports what users did."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body

from userdesk.activity import service as activity
from userdesk.activity.service import EventsResult
from userdesk.web.deps import CurrentActor, DbSession

router = APIRouter(prefix="/events", tags=["events"])


@router.post("", response_model=EventsResult)
async def record_events(
    db: DbSession,
    actor: CurrentActor,
    items: list[Any] = Body(
        json_schema_extra={"maxItems": activity.MAX_EVENTS},  # the service names `events`
        description='Up to 1,000 of {"user_id" or "email", "type", "occurred_at", '
        '"properties", "id"}; past times are fine (backfill); an "id" sent again is skipped.',
    ),
) -> EventsResult:
    """Bad items come back in `errors` by index; the good ones are kept."""
    return activity.record_events(db, actor=actor, items=items)
