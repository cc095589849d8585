"""/api/v1/churn: scoring runs, and what churn means for the organization."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from userdesk.churn import scoring
from userdesk.churn import settings as churn_settings
from userdesk.churn.settings import ChurnDefinitionRead, ChurnDefinitionWrite
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
    """Score every user as of a moment: a job (follow it at /api/v1/jobs/{id}). Its
    `problems` say in words why there may be nobody to score, or too little history, and
    what to send."""
    return JobRead.of(scoring.start(db, actor=actor, as_of=body.as_of))


@router.get("/definition", response_model=ChurnDefinitionRead)
async def read_definition(db: DbSession, actor: CurrentActor) -> ChurnDefinitionRead:
    """What churn means for the organization, and in words what is predicted."""
    return ChurnDefinitionRead.of(churn_settings.read(db, actor=actor))


@router.put("/definition", response_model=ChurnDefinitionRead)
async def change_definition(
    body: ChurnDefinitionWrite, db: DbSession, actor: CurrentActor
) -> ChurnDefinitionRead:
    """Choose what churn means: inactivity (the default) or an event within the horizon."""
    return ChurnDefinitionRead.of(churn_settings.change(db, actor=actor, given=body))
