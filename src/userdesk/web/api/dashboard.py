"""/api/v1/dashboard: the console dashboard's figures."""

from __future__ import annotations

from datetime import date, datetime

from fastapi import APIRouter
from pydantic import BaseModel, Field

from userdesk.dashboard import service as dashboard
from userdesk.web.deps import CurrentActor, DbSession

router = APIRouter(prefix="/dashboard", tags=["dashboard"])


class StatusPoint(BaseModel):
    day: date
    users: dict[str, int] = Field(description="Users in each status on the day.")


class RunPoint(BaseModel):
    run_id: str
    as_of: datetime
    levels: dict[str, int] = Field(description="Users at each churn level in the run.")


class AtRiskUser(BaseModel):
    user_id: str
    name: str
    email: str
    probability: float
    level: str
    reasons: list[str]


class DashboardRead(BaseModel):
    statuses: list[StatusPoint] = Field(description="Oldest first, the days counted.")
    runs: list[RunPoint] = Field(description="The latest scoring runs, oldest first.")
    at_risk: list[AtRiskUser] = Field(description="The latest run's users most at risk.")


@router.get("", response_model=DashboardRead)
async def read_dashboard(db: DbSession, actor: CurrentActor) -> DashboardRead:
    """Users by status over the last 90 days, churn levels over the latest runs and the
    users most at risk, within the caller's reach (churn figures need users.activity)."""
    board = dashboard.dashboard(db, actor=actor)
    history = board.statuses
    return DashboardRead(
        statuses=[
            StatusPoint(day=day, users={s: history.series[s][i] for s in history.series})
            for i, day in enumerate(history.days)
        ],
        runs=[RunPoint(run_id=str(r.run_id), as_of=r.as_of, levels=r.counts) for r in board.runs],
        at_risk=[
            AtRiskUser(
                user_id=str(u.user_id),
                name=u.name,
                email=u.email,
                probability=u.probability,
                level=u.level,
                reasons=u.reasons,
            )
            for u in board.at_risk
        ],
    )
