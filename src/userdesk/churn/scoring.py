"""Scoring every user of an organization as of a moment: a job, set-based.

The run first calibrates the score on a backtest (the same features 30 days earlier,
against who then went quiet), then goes through the users in id ranges: one statement
adds up each range's events (conditional sums over the (user_id, occurred_at) index),
Python turns each row into a prediction, and the range's scores go in with a few
multi-row INSERTs and one UPDATE per level. Every run keeps its scores (the history).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Row,
    Select,
    and_,
    case,
    cast,
    exists,
    func,
    literal,
    select,
    true,
    update,
)
from sqlalchemy.orm import Session

from userdesk.access import service as access
from userdesk.access.rules import Actor, Permission
from userdesk.activity.models import ActivityEvent
from userdesk.audit import service as audit
from userdesk.churn import model
from userdesk.churn.features import DAY, WEEKS, Activity, Features, features
from userdesk.churn.models import ChurnRun, ChurnScore
from userdesk.db import bulk
from userdesk.db.base import UTCDateTime, utcnow
from userdesk.jobs import service as jobs
from userdesk.jobs.models import Job
from userdesk.organizations.models import Organization
from userdesk.users.models import User

KIND = "churn.score"
MODEL = "transparent-v1"
RANGE = 50_000  # users per step (one transaction)
BACKTEST_SAMPLE = 20_000
SCORED_STATUSES = ("pending", "active", "disabled", "banned")  # not trashed or deleted


def _week(dialect: str, as_of: datetime, at: Any) -> Any:
    """The whole weeks between AT and AS_OF (0: the last seven days)."""
    if dialect == "sqlite":
        days = func.julianday(literal(as_of.astimezone(UTC).replace(tzinfo=None))) - func.julianday(
            at
        )
        return cast(days / 7, Integer)
    seconds = func.extract("epoch", literal(as_of, UTCDateTime) - at)
    return func.floor(seconds / (7 * 24 * 3600))


def _activity_columns(dialect: str, as_of: datetime) -> list[Any]:
    at = ActivityEvent.occurred_at

    def count(*conditions: Any) -> Any:
        return func.sum(case((and_(*conditions), 1), else_=0))

    def since(days: int) -> datetime:
        return as_of - days * DAY

    weeks = func.count(func.distinct(case((at > since(7 * WEEKS), _week(dialect, as_of, at)))))
    return [
        count(at >= since(7)).label("last_7"),
        count(at >= since(28)).label("last_28"),
        count(at >= since(56), at < since(28)).label("previous_28"),
        count(at >= since(90)).label("last_90"),
        weeks.label("active_weeks"),
        func.max(at).label("last_event_at"),
        func.max(case((ActivityEvent.type == "login", at), else_=None)).label("last_login_at"),
    ]


UserIds = Callable[[Any], ColumnElement[bool]]  # user id column -> which users


def _statement(dialect: str, organization_id: int, as_of: datetime, ids: UserIds) -> Select[Any]:
    """Each user's standing and their events added up, as of AS_OF (strictly before), for
    the users IDS selects (applied to the events too, so that only theirs are read)."""
    events = (
        select(ActivityEvent.user_id, *_activity_columns(dialect, as_of))
        .where(ActivityEvent.occurred_at < as_of, ids(ActivityEvent.user_id))
        .group_by(ActivityEvent.user_id)
        .subquery()
    )
    return (
        select(
            User.id,
            User.created_at,
            User.email_verified_at,
            User.validated_at,
            User.status,
            events.c.last_7,
            events.c.last_28,
            events.c.previous_28,
            events.c.last_90,
            events.c.active_weeks,
            events.c.last_event_at,
            events.c.last_login_at,
        )
        .join(events, events.c.user_id == User.id, isouter=True)
        .where(
            User.organization_id == organization_id,
            User.status.in_(SCORED_STATUSES),
            User.created_at < as_of,
            ids(User.id),
        )
    )


def _dialect(db: Session) -> str:
    return db.get_bind().dialect.name


def _in_range(after: int, size: int) -> UserIds:
    return lambda column: and_(column > after, column <= after + size)


def _activity(row: Row[Any]) -> Activity:
    """The sums of a row of _statement (a user without events has none)."""
    return Activity(
        last_7=row.last_7 or 0,
        last_28=row.last_28 or 0,
        previous_28=row.previous_28 or 0,
        last_90=row.last_90 or 0,
        active_weeks=row.active_weeks or 0,
        last_event_at=row.last_event_at,
        last_login_at=row.last_login_at,
    )


def _features(row: Row[Any], as_of: datetime) -> Features:
    return features(
        _activity(row),
        as_of=as_of,
        created_at=row.created_at,
        verified=row.email_verified_at is not None,
        validated=row.validated_at is not None,
        status=row.status,
    )


def backtest(
    db: Session,
    organization_id: int,
    as_of: datetime,
    cutoffs: tuple[float, float] = model.DEFAULT_CUTOFFS,
) -> dict[str, Any]:
    """Features HORIZON days before AS_OF against who then went quiet: the calibration
    (Platt scaling of the score), and how well the levels would have told."""
    snapshot = as_of - model.HORIZON_DAYS * DAY
    users = db.scalar(select(func.count()).where(User.organization_id == organization_id))
    step = max(1, (users or 0) // BACKTEST_SAMPLE)  # every STEP-th user by id

    def sampled(column: Any) -> ColumnElement[bool]:
        return column % step == 0 if step > 1 else true()

    came_back = (
        exists()
        .where(
            ActivityEvent.user_id == User.id,
            ActivityEvent.occurred_at >= snapshot,
            ActivityEvent.occurred_at < as_of,
        )
        .label("came_back")
    )
    rows = db.execute(
        _statement(_dialect(db), organization_id, snapshot, sampled).add_columns(came_back)
    ).all()
    scores = [model.score(_features(row, snapshot)) for row in rows]
    churned = [not row.came_back for row in rows]
    fitted = model.fit_calibration(scores, churned)
    # Who was active in the HORIZON before the snapshot is "at risk" or not; who was not
    # is already inactive, and reported apart.
    recent = snapshot - model.HORIZON_DAYS * DAY
    active = [row.last_event_at is not None and row.last_event_at >= recent for row in rows]
    by_level: dict[str, list[bool]] = {name: [] for name in model.LEVELS}
    for score, went, was_active in zip(scores, churned, active, strict=True):
        if was_active:
            by_level[model.level(fitted.probability(score), cutoffs)].append(went)
    dormant = [went for went, was_active in zip(churned, active, strict=True) if not was_active]
    return {
        "a": fitted.a,
        "b": fitted.b,
        "users": len(rows),
        "churn_rate": sum(churned) / len(rows) if rows else None,
        "snapshot": snapshot.isoformat(),
        # share of the users once active at each level who then went quiet
        "reliability": {
            name: {"users": len(went), "went_quiet": sum(went) / len(went) if went else None}
            for name, went in by_level.items()
        },
        "inactive": {
            "users": len(dormant),
            "stayed_quiet": sum(dormant) / len(dormant) if dormant else None,
        },
    }


def start(db: Session, *, actor: Actor, as_of: datetime | None = None) -> Job:
    """Queue a scoring of the organization's users as of AS_OF (now by default).

    Raises:
        PermissionDenied: the actor may not manage settings.
    """
    access.require(actor, Permission.SETTINGS_MANAGE)
    moment = as_of or utcnow()
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    total = db.scalar(
        select(func.count())
        .select_from(User)
        .where(User.organization_id == actor.organization_id, User.status.in_(SCORED_STATUSES))
    )
    job = jobs.create(
        db, actor=actor, kind=KIND, params={"as_of": moment.isoformat()}, total=total or 0
    )
    audit.record(
        db,
        actor=actor,
        action="churn.scoring_started",
        target_type="job",
        target_id=job.id,
        changes={"as_of": moment.isoformat()},
    )
    return job


def _step(db: Session, job: Job, actor: Actor, base_url: str) -> bool:
    as_of = datetime.fromisoformat(job.params["as_of"])
    org = job.organization_id
    run_id = job.params.get("run_id")
    if run_id is None:
        run = ChurnRun(
            organization_id=org,
            as_of=as_of,
            model=MODEL,
            calibration=backtest(db, org, as_of, cutoffs_of(db.get_one(Organization, org))),
        )
        db.add(run)
        db.flush()
        job.params = {**job.params, "run_id": run.id}
        return False
    run = db.get_one(ChurnRun, run_id)
    calibration = model.Calibration(run.calibration["a"], run.calibration["b"])
    cutoffs = cutoffs_of(db.get_one(Organization, org))
    last_id = db.scalar(select(func.max(User.id)).where(User.organization_id == org)) or 0
    after = job.cursor
    rows = db.execute(
        _statement(_dialect(db), org, as_of, _in_range(after, RANGE)).order_by(User.id)
    ).all()
    scored = _write(db, run, rows, as_of, calibration, cutoffs)
    run.users += scored
    job.done += scored
    job.cursor = after + RANGE
    if job.cursor < last_id:
        return False
    run.finished_at = utcnow()
    audit.record(
        db,
        actor=actor,
        action="churn.scored",
        target_type="churn_run",
        target_id=run.id,
        changes={"users": run.users, "as_of": as_of.isoformat(), "model": MODEL},
    )
    return True


def _write(
    db: Session,
    run: ChurnRun,
    rows: Sequence[Row[Any]],
    as_of: datetime,
    calibration: model.Calibration,
    cutoffs: tuple[float, float],
) -> int:
    conn = db.connection()
    scores = []
    by_level: dict[str, list[int]] = {name: [] for name in model.LEVELS}
    for row in rows:
        predicted = model.predict(_features(row, as_of), calibration, cutoffs)
        scores.append(
            (
                run.organization_id,
                run.id,
                row.id,
                round(predicted.probability, 4),
                predicted.level,
                bulk.json_text(predicted.reasons),
            )
        )
        by_level[predicted.level].append(row.id)
    bulk.insert_rows(
        conn,
        "churn_scores",
        ("organization_id", "run_id", "user_id", "probability", "level", "reasons"),
        scores,
    )
    for name, ids in by_level.items():
        for start in range(0, len(ids), 10_000):
            db.execute(
                update(User)
                .where(
                    User.id.in_(ids[start : start + 10_000]),
                    User.churn_level.is_distinct_from(name),  # only rows that change
                )
                .values(churn_level=name)
                .execution_options(synchronize_session=False)
            )
    return len(scores)


def level_counts(db: Session, run: ChurnRun) -> dict[str, int]:
    """How many users of RUN are at each level."""
    return dict(
        db.execute(
            select(ChurnScore.level, func.count())
            .where(ChurnScore.run_id == run.id)
            .group_by(ChurnScore.level)
        ).all()
    )


def cutoffs_of(organization: Organization) -> tuple[float, float]:
    """The probabilities from which a user is at medium, and at high, risk."""
    medium, high = organization.settings.get("churn_cutoffs", model.DEFAULT_CUTOFFS)
    return float(medium), float(high)


def due(db: Session, now: datetime, every: timedelta) -> list[int]:
    """The organizations whose users were last scored over EVERY ago (or never), with no
    scoring already waiting."""
    waiting = select(Job.organization_id).where(
        Job.kind == KIND, Job.status.in_(("queued", "running"))
    )
    recent = select(ChurnRun.organization_id).where(ChurnRun.created_at > now - every)
    return list(
        db.scalars(
            select(Organization.id).where(
                Organization.id.not_in(waiting), Organization.id.not_in(recent)
            )
        )
    )


jobs.STEPS[KIND] = _step
