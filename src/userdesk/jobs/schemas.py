"""What is shown of a job."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from userdesk.jobs.models import Job


class JobRead(BaseModel):
    id: str
    kind: str
    status: str  # queued | running | done | failed
    total: int
    done: int
    failed: int
    problems: list[dict[str, Any]]
    result: list[dict[str, Any]]
    params: dict[str, Any]
    created_at: datetime
    finished_at: datetime | None

    @property
    def percent(self) -> int:
        handled = self.done + self.failed
        return 100 if self.status == "done" else min(100, handled * 100 // max(self.total, 1))

    @classmethod
    def of(cls, job: Job, result: list[dict[str, Any]] | None = None) -> JobRead:
        """JOB as shown, with what it found item by item (jobs.items) when given."""
        return cls(
            id=str(job.id),
            kind=job.kind,
            status=job.status,
            total=job.total,
            done=job.done,
            failed=job.failed,
            problems=job.problems,
            result=result or [],
            params=job.params,
            created_at=job.created_at,
            finished_at=job.finished_at,
        )
