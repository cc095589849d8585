"""Scoring every user of an organization as of a moment: a job, set-based.

The run first calibrates the score on a backtest (the same features 30 days earlier,
against who then went quiet) and trains the boosting model where there is history, then
goes through the users in id ranges: one statement adds up each range's events
(conditional sums over the (user_id, occurred_at) index) into numbers, read on a
connection of its own while the range before is scored; numpy turns the rows into
predictions, and the range's scores go in with a few multi-row INSERTs, the levels that
changed with one UPDATE run for each. Every run keeps its scores (the history).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import (
    ColumnElement,
    Engine,
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
)
from sqlalchemy.orm import Session

from userdesk.access import service as access
from userdesk.access.rules import Actor, Permission
from userdesk.activity.models import NOT_THE_USERS_DOING, ActivityEvent
from userdesk.audit import service as audit
from userdesk.churn import boosting, model
from userdesk.churn.features import DAY, WEEKS, FeatureColumns, Floats
from userdesk.churn.models import ChurnRun, ChurnScore
from userdesk.db import bulk
from userdesk.db.base import UTCDateTime, utcnow
from userdesk.jobs import service as jobs
from userdesk.jobs.models import Job
from userdesk.organizations.models import Organization
from userdesk.users.models import User
from userdesk.webhooks import events as webhook_events

KIND = "churn.score"
MODEL = "transparent-v1"
RANGE = 50_000  # users per step (one transaction)
BACKTEST_SAMPLE = 20_000
SCORED_STATUSES = ("pending", "active", "disabled", "banned")  # not trashed or deleted


def _days_before(dialect: str, as_of: datetime, at: Any) -> Any:
    """The days (with their fraction) from AT to AS_OF."""
    if dialect == "sqlite":
        moment = literal(as_of.astimezone(UTC).replace(tzinfo=None))
        return func.julianday(moment) - func.julianday(at)
    return func.extract("epoch", literal(as_of, UTCDateTime) - at) / 86_400


def _activity_columns(dialect: str, as_of: datetime) -> list[Any]:
    at = ActivityEvent.occurred_at

    def count(*conditions: Any) -> Any:
        return func.sum(case((and_(*conditions), 1), else_=0))

    def since(days: int) -> datetime:
        return as_of - days * DAY

    weeks_ago = _days_before(dialect, as_of, at) / 7
    week = cast(weeks_ago, Integer) if dialect == "sqlite" else func.floor(weeks_ago)
    weeks = func.count(func.distinct(case((at > since(7 * WEEKS), week))))
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
    """Each user's id and features as FeatureColumns.ROW lays them out, as of AS_OF (from
    events strictly before), for the users IDS selects (applied to the events too, so
    that only theirs are read)."""
    events = (
        select(ActivityEvent.user_id, *_activity_columns(dialect, as_of))
        .where(
            ActivityEvent.occurred_at < as_of,
            ids(ActivityEvent.user_id),
            ActivityEvent.type.not_in(NOT_THE_USERS_DOING),
        )
        .group_by(ActivityEvent.user_id)
        .subquery()
    )

    def flag(condition: ColumnElement[bool]) -> Any:
        return case((condition, 1), else_=0)

    return (
        select(
            User.id,
            _days_before(dialect, as_of, User.created_at).label("tenure_days"),
            flag(User.email_verified_at.is_not(None)).label("verified"),
            flag(User.validated_at.is_not(None)).label("validated"),
            flag(User.status != "pending").label("accepted"),
            events.c.last_7,
            events.c.last_28,
            events.c.previous_28,
            events.c.last_90,
            events.c.active_weeks,
            _days_before(dialect, as_of, events.c.last_event_at).label("days_since_event"),
            _days_before(dialect, as_of, events.c.last_login_at).label("days_since_login"),
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


def _columns(rows: Sequence[Row[Any]]) -> FeatureColumns:
    """The features in rows of _statement (after the id, maybe before more columns)."""
    width = len(FeatureColumns.ROW)
    return FeatureColumns.of_rows([row[1 : 1 + width] for row in rows])


def sample_of(db: Session, organization_id: int, size: int) -> UserIds:
    """About SIZE of the organization's users: every n-th by id. (Their events are then
    found through the users' index, not by reading every event.)"""
    users = db.scalar(select(func.count()).where(User.organization_id == organization_id))
    step = max(1, (users or 0) // size)
    if step == 1:
        return lambda column: true()
    chosen = select(User.id).where(User.organization_id == organization_id, User.id % step == 0)
    return lambda column: column.in_(chosen)


def labelled(
    db: Session,
    organization_id: int,
    at: datetime,
    *,
    sample: int,
    horizon: timedelta = model.HORIZON_DAYS * DAY,
) -> tuple[FeatureColumns, Floats]:
    """The features as of AT of a sample of users, and whether each then went quiet (1.0:
    no sign-in and no event in the HORIZON after)."""
    came_back = (
        exists()
        .where(
            ActivityEvent.user_id == User.id,
            ActivityEvent.occurred_at >= at,
            ActivityEvent.occurred_at < at + horizon,
            ActivityEvent.type.not_in(NOT_THE_USERS_DOING),
        )
        .label("came_back")
    )
    ids = sample_of(db, organization_id, sample)
    rows = db.execute(
        _statement(_dialect(db), organization_id, at, ids).add_columns(came_back)
    ).all()
    churned = np.array([not row.came_back for row in rows], dtype=np.float64)
    return _columns(rows), churned


def backtest(
    db: Session,
    organization_id: int,
    as_of: datetime,
    cutoffs: tuple[float, float] = model.DEFAULT_CUTOFFS,
) -> dict[str, Any]:
    """Features HORIZON days before AS_OF against who then went quiet: the calibration
    (Platt scaling of the score), and how well the levels would have told."""
    snapshot = as_of - model.HORIZON_DAYS * DAY
    columns, went_quiet = labelled(db, organization_id, snapshot, sample=BACKTEST_SAMPLE)
    scores = model.scores(columns).tolist()
    churned = [bool(x) for x in went_quiet.tolist()]
    fitted = model.fit_calibration(scores, churned)
    # Who was active in the HORIZON before the snapshot is "at risk" or not; who was not
    # is already inactive, and reported apart.
    active = (columns.days_since_event <= model.HORIZON_DAYS).tolist()  # NaN: never
    by_level: dict[str, list[bool]] = {name: [] for name in model.LEVELS}
    for score, went, was_active in zip(scores, churned, active, strict=True):
        if was_active:
            by_level[model.level(fitted.probability(score), cutoffs)].append(went)
    dormant = [went for went, was_active in zip(churned, active, strict=True) if not was_active]
    return {
        "a": fitted.a,
        "b": fitted.b,
        "users": len(churned),
        "churn_rate": sum(churned) / len(churned) if churned else None,
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

    def statement(after: int) -> Select[Any]:
        chosen = _in_range(after, RANGE)
        return (
            _statement(_dialect(db), org, as_of, chosen)
            .add_columns(User.churn_level)  # last: the level until now
            .order_by(User.id)
        )

    if run_id is None:
        job.cursor = _range_after(db, org, job.cursor) or job.cursor
        _read_ahead.start(db, job.id, job.cursor, statement(job.cursor))  # during the backtest
        run = ChurnRun(
            organization_id=org,
            as_of=as_of,
            model=MODEL,
            calibration=backtest(db, org, as_of, cutoffs_of(db.get_one(Organization, org))),
        )
        db.add(run)
        db.flush()
        trained = boosting.for_run(db, run)  # None: not enough history
        if trained is not None:
            run.model = boosting.NAME
            run.calibration = {**run.calibration, "boosting": trained.summary}
        job.params = {**job.params, "run_id": run.id}
        return False
    run = db.get_one(ChurnRun, run_id)
    calibration = model.Calibration(run.calibration["a"], run.calibration["b"])
    trained = boosting.for_run(db, run) if run.model == boosting.NAME else None
    cutoffs = cutoffs_of(db.get_one(Organization, org))
    after = job.cursor
    rows = _read_ahead.take(job.id, after) or db.execute(statement(after)).all()
    following = _range_after(db, org, after + RANGE)
    if following is not None:
        _read_ahead.start(db, job.id, following, statement(following))
    scored = _write(db, run, rows, calibration, cutoffs, trained)
    run.users += scored
    job.done += scored
    if following is not None:
        job.cursor = following
        return False
    run.finished_at = utcnow()
    audit.record(
        db,
        actor=actor,
        action="churn.scored",
        target_type="churn_run",
        target_id=run.id,
        changes={"users": run.users, "as_of": as_of.isoformat(), "model": run.model},
    )
    return True


def _range_after(db: Session, organization_id: int, after: int) -> int | None:
    """Where the next range of ids starts (just before the organization's first user with
    an id above AFTER), or None when no user is left: ranges skip the ids of other
    organizations' users instead of stepping through them."""
    first = db.scalar(
        select(func.min(User.id)).where(User.organization_id == organization_id, User.id > after)
    )
    return None if first is None else first - 1


class _ReadAhead:
    """The next range's rows, read on a connection of its own while this range is scored:
    the database adds up events on one core while numpy and the trees work on the other.
    (A step writes scores, and the levels of its own range only: the range read ahead,
    levels included, is what it would read after the step.)"""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="churn-read-ahead")
        self._lock = threading.Lock()
        self._reading: dict[tuple[int, int], Future[Sequence[Row[Any]]]] = {}

    def start(self, db: Session, job_id: int, after: int, statement: Select[Any]) -> None:
        """Start reading the rows of STATEMENT for the step of JOB_ID at cursor AFTER."""
        engine = db.get_bind()
        if not isinstance(engine, Engine):  # bound to one connection: nothing to read beside
            return
        with self._lock:
            self._reading = {key: f for key, f in self._reading.items() if key[0] != job_id}
            self._reading[(job_id, after)] = self._pool.submit(_rows, engine, statement)

    def take(self, job_id: int, after: int) -> Sequence[Row[Any]] | None:
        """The rows read ahead for this step, or None (not started, or it failed)."""
        with self._lock:
            future = self._reading.pop((job_id, after), None)
        if future is None or future.exception() is not None:
            return None
        return future.result()


def _rows(engine: Engine, statement: Select[Any]) -> Sequence[Row[Any]]:
    with engine.connect() as conn:
        return conn.execute(statement).all()


_read_ahead = _ReadAhead()


def _write(
    db: Session,
    run: ChurnRun,
    rows: Sequence[Row[Any]],
    calibration: model.Calibration,
    cutoffs: tuple[float, float],
    trained: boosting.Booster | None = None,
) -> int:
    conn = db.connection()
    columns = _columns(rows)
    predicted = (
        trained.predict_all(columns, cutoffs)
        if trained is not None
        else model.predict_all(columns, calibration, cutoffs)
    )
    ids = [row[0] for row in rows]
    org, run_id = run.organization_id, run.id
    scores = [
        (org, run_id, user_id, round(probability, 4), level, bulk.json_text(reasons))
        for user_id, probability, level, reasons in zip(
            ids, predicted.probabilities, predicted.levels, predicted.reasons, strict=True
        )
    ]
    bulk.insert_rows(
        conn,
        "churn_scores",
        ("organization_id", "run_id", "user_id", "probability", "level", "reasons"),
        scores,
    )
    moved = [  # the level until now is the row's last column
        (row[0], row[-1], level)
        for row, level in zip(rows, predicted.levels, strict=True)
        if row[-1] != level
    ]
    now = bulk.sql_time(_dialect(db))(utcnow())
    changed = [(user_id, level) for user_id, _, level in moved]
    bulk.update_rows(conn, "users", ("churn_level",), changed, same={"updated_at": now})
    webhook_events.churn_levels_changed(db, organization_id=org, moved=moved)
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
jobs.READ_PERMISSION[KIND] = lambda params: Permission.SETTINGS_MANAGE
