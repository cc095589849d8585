"""/api/v1/churn: scoring runs, and what churn means for the organization."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from userdesk.churn import service as churn
from userdesk.churn import settings as churn_settings
from userdesk.churn.service import ChurnRunPage, ChurnRunRead, RunScorePage
from userdesk.churn.settings import ChurnDefinitionRead, ChurnDefinitionWrite
from userdesk.jobs.schemas import JobRead
from userdesk.users import service as users
from userdesk.web.api.params import IsoDateTime
from userdesk.web.deps import CurrentActor, DbSession
from userdesk.web.inputs import PathId

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
    from userdesk.churn import scoring  # its model's libraries load when a run is asked

    return JobRead.of(scoring.start(db, actor=actor, as_of=body.as_of))


Limit = Annotated[
    int,
    Query(
        ge=1,
        le=users.MAX_PAGE_SIZE,
        description=f"Items a page, 1 to {users.MAX_PAGE_SIZE} (as the Users list).",
    ),
]
Cursor = Annotated[
    str | None, Query(description="The `next_cursor` of the page before; none: the first.")
]


@router.get("/runs", response_model=ChurnRunPage)
async def list_runs(
    db: DbSession,
    actor: CurrentActor,
    limit: Limit = users.DEFAULT_PAGE_SIZE,
    cursor: Cursor = None,
) -> ChurnRunPage:
    """The organization's scoring runs, newest first (users.activity)."""
    return churn.list_runs(db, actor=actor, limit=limit, cursor=cursor)


@router.get("/runs/{run_id:int}", response_model=ChurnRunRead)
async def read_run(run_id: PathId, db: DbSession, actor: CurrentActor) -> ChurnRunRead:
    """One scoring run: as of when, its model, how many users, what it predicted."""
    return ChurnRunRead.of(churn.get_run(db, actor=actor, run_id=run_id))


@router.get("/runs/{run_id:int}/scores", response_model=RunScorePage)
async def run_scores(
    run_id: PathId,
    db: DbSession,
    actor: CurrentActor,
    level: Annotated[
        Literal["low", "medium", "high"] | None, Query(description="Only this level's scores.")
    ] = None,
    limit: Limit = users.DEFAULT_PAGE_SIZE,
    cursor: Cursor = None,
) -> RunScorePage:
    """Every score of a run, most likely to churn first (ties: the higher user id first), a
    page at a time: each user's probability, level and reasons, as GET /users/{id}/churn reads the
    latest. Only the users within the actor's reach (users.activity: a Team
    Administrator sees their team's)."""
    return churn.run_scores(db, actor=actor, run_id=run_id, level=level, limit=limit, cursor=cursor)


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
