"""/api/v1/jobs: progress and outcome of long work."""

from __future__ import annotations

from fastapi import APIRouter

from userdesk.jobs import service as jobs
from userdesk.jobs.schemas import JobRead
from userdesk.web.deps import CurrentActor, DbSession
from userdesk.web.inputs import PathId

router = APIRouter(prefix="/jobs", tags=["jobs"])


@router.get("/{job_id}", response_model=JobRead)
async def get_job(
    job_id: PathId, db: DbSession, actor: CurrentActor, failed_only: bool = False
) -> JobRead:
    """How far the job got, and what it found item by item (an import: every row by
    number, with its fate; `failed_only=true`: the rows that failed, and why)."""
    job = jobs.get(db, actor=actor, job_id=job_id)
    return JobRead.of(job, jobs.items(db, job, failed_only=failed_only))
