"""/api/v1/churn: scoring runs."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from userdesk.churn import scoring
from userdesk.jobs.schemas import JobRead
from userdesk.web.api.params import IsoDateTime
from userdesk.web.deps import CurrentActor, DbSession

router = APIRouter(prefix="/churn", tags=["churn"])


class RunRequest(BaseModel):
    as_of: IsoDateTime | None = Field(
        default=None, description="Score as of this moment (ISO 8601); now if left out."
    )


@router.post("/runs", response_model=JobRead, status_code=202)
async def start_run(body: RunRequest, db: DbSession, actor: CurrentActor) -> JobRead:
    """Score every user as of a moment: a job (follow it at /api/v1/jobs/{id})."""
    return JobRead.of(scoring.start(db, actor=actor, as_of=body.as_of))
