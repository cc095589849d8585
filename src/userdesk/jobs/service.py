"""Jobs: created by a service, run step by step by the worker, read for their progress."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from userdesk.access import service as access
from userdesk.access.rules import Actor, Permission, holds_everywhere, system_actor
from userdesk.auth.models import ApiKey
from userdesk.db import bulk
from userdesk.db.base import utcnow
from userdesk.errors import NotFound, PermissionDenied
from userdesk.jobs.models import Job, JobItem
from userdesk.users.models import User
from userdesk.users.rules import SIGN_IN_STATUSES

LEASE = timedelta(minutes=2)
PROBLEMS_KEPT = 200
# kind -> step(db, job, actor, base_url): handles one chunk; True when nothing is left.
Step = Callable[[Session, Job, Actor, str], bool]
STEPS: dict[str, Step] = {}
# kind -> the permission a job of that kind takes (from its params): who holds it over the
# whole organization sees others' jobs of the kind. A kind without one: its starter only.
READ_PERMISSION: dict[str, Callable[[dict[str, Any]], str]] = {}


def create(db: Session, *, actor: Actor, kind: str, params: dict[str, Any], total: int) -> Job:
    """Queue a job that will act as ACTOR (as they are when it runs)."""
    job = Job(
        organization_id=actor.organization_id,
        kind=kind,
        status="queued",
        params=params,
        total=total,
        created_by_id=actor.user_id,
        actor={
            "user_id": actor.user_id,
            "api_key_id": actor.api_key_id,
            "ip": actor.ip,
            "user_agent": actor.user_agent,
            "name": actor.name,
        },
    )
    db.add(job)
    db.flush()
    return job


def started_by(actor: Actor, job: Job) -> bool:
    """Whether ACTOR (the same person, or the same API key) started JOB."""
    who = job.actor
    if actor.user_id is not None:
        return who.get("user_id") == actor.user_id
    return actor.api_key_id is not None and who.get("api_key_id") == actor.api_key_id


def get(db: Session, *, actor: Actor, job_id: int) -> Job:
    """A job the actor may see: of its organization, and started by it or (a job names
    users: rows, emails) seen by one who holds users.read and the job's permission
    (READ_PERMISSION) over the whole organization. Outside reach, a job does not exist.

    Raises:
        PermissionDenied: the actor may not read users.
        NotFound: no such job within the actor's reach.
    """
    access.require(actor, Permission.USERS_READ)
    job = db.get(Job, job_id)
    if job is None or job.organization_id != actor.organization_id:
        raise NotFound(f"No job {job_id}.", code="job.not_found")
    if not started_by(actor, job):
        of_kind = READ_PERMISSION.get(job.kind)
        if of_kind is None or not (
            holds_everywhere(actor, Permission.USERS_READ)
            and holds_everywhere(actor, of_kind(job.params))
        ):
            raise NotFound(f"No job {job_id}.", code="job.not_found")
    return job


def note_problem(job: Job, item: dict[str, Any]) -> None:
    job.failed += 1
    if len(job.problems) < PROBLEMS_KEPT:
        job.problems = [*job.problems, item]


def record_items(db: Session, job: Job, items: list[dict[str, Any]]) -> None:
    """Keep what JOB found for each of ITEMS ({"row", "email", "fate", "detail"?}); an item
    with a detail is one that failed."""
    if not items:
        return
    bulk.insert_rows(
        db.connection(),
        "job_items",
        ("number", "email", "fate", "ok", "detail"),
        [
            (item["row"], item["email"], item["fate"], "detail" not in item, item.get("detail"))
            for item in items
        ],
        same={"organization_id": job.organization_id, "job_id": job.id},
    )


def items(
    db: Session, job: Job, *, failed_only: bool = False, limit: int | None = None
) -> list[dict[str, Any]]:
    """What JOB found, item by item in their order (only the failed ones if FAILED_ONLY)."""
    query = select(JobItem.number, JobItem.email, JobItem.fate, JobItem.detail).where(
        JobItem.job_id == job.id
    )
    if failed_only:
        query = query.where(JobItem.ok.is_(False))
    rows = db.execute(query.order_by(JobItem.number).limit(limit))
    return [
        {"row": n, "email": email, "fate": fate, **({"detail": detail} if detail else {})}
        for n, email, fate, detail in rows
    ]


def forget_items(db: Session, job: Job) -> None:
    db.execute(delete(JobItem).where(JobItem.job_id == job.id))


def acting_as(db: Session, job: Job) -> Actor:
    """The job's actor, rebuilt now: one who lost access since stops the job.

    Raises:
        PermissionDenied: the user or key behind the job may no longer act.
    """
    who = job.actor
    if who.get("user_id"):
        user = db.get(User, who["user_id"])
        if user is None or user.status not in SIGN_IN_STATUSES:
            raise PermissionDenied("The person who started this job may no longer act.")
        return access.actor_for_user(db, user, ip=who.get("ip"), user_agent=who.get("user_agent"))
    if not who.get("api_key_id"):
        return system_actor(job.organization_id, who.get("name") or "system")
    key = db.get(ApiKey, who["api_key_id"])
    if key is None or key.revoked_at is not None:
        raise PermissionDenied("The API key that started this job was revoked.")
    return access.actor_for_role(
        db,
        organization_id=key.organization_id,
        role_id=key.role_id,
        team_id=key.team_id,
        name=f"API key {key.name}",
        api_key_id=key.id,
        ip=who.get("ip"),
        user_agent=who.get("user_agent"),
    )


def claim(db: Session) -> Job | None:
    """Lease the oldest job that is waiting (or whose worker went away)."""
    now = utcnow()
    for job_id in db.scalars(
        select(Job.id)
        .where(
            Job.status.in_(("queued", "running")),
            or_(Job.locked_until.is_(None), Job.locked_until < now),
        )
        .order_by(Job.id)
        .limit(5)
    ):
        taken = db.execute(
            update(Job)
            .where(Job.id == job_id, or_(Job.locked_until.is_(None), Job.locked_until < now))
            .values(locked_until=now + LEASE, status="running")
        )
        if taken.rowcount == 1:  # type: ignore[attr-defined]
            return db.get(Job, job_id)
    return None


def step(db: Session, *, job: Job, base_url: str) -> bool:
    """Run one chunk of JOB; True when the job is over (done or failed)."""
    try:
        actor = acting_as(db, job)
        finished = STEPS[job.kind](db, job, actor, base_url)
    except PermissionDenied as exc:
        job.status = "failed"
        job.problems = [*job.problems, {"problem": exc.message}]
        finished = True
    if finished:
        if job.status != "failed":
            job.status = "done"
        job.finished_at = utcnow()
        job.locked_until = None
    else:
        job.locked_until = utcnow() + LEASE
    db.flush()
    return finished
