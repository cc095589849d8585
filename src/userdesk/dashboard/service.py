"""The dashboard's figures, and the daily counts the worker keeps for them.

Users by status over time come from `user_status_days`: the worker counts the users by
team and status (one GROUP BY) and keeps the day's last count, so the page reads at most
DAYS x teams x statuses small rows whatever the number of users. The first count of an
organization also rebuilds the DAYS before it from users.created_at and the audit log's
status changes ({"status": {"from", "to"}}), walking back from today's statuses.

Churn levels per run come from `churn_run_levels` (counted once per finished run), and
the users most at risk from the latest run's scores, read in probability order.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from userdesk.access import service as access
from userdesk.access.rules import Actor, Permission
from userdesk.audit.models import AuditEvent
from userdesk.churn.models import ChurnRun, ChurnScore
from userdesk.churn.rules import LEVELS
from userdesk.dashboard.models import RunLevel, StatusDay
from userdesk.users.models import User
from userdesk.users.rules import UserStatus

DAYS = 90  # of users by status, the page's window and the backfill's
RUNS = 8  # scoring runs whose levels are compared
TOP = 10  # users most at risk shown
SHOWN_STATUSES = tuple(s.value for s in UserStatus)  # every status, Deleted included
CHUNK = 500  # ids per IN (...)

Key = tuple[int | None, str]  # (team_id, status)


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time(), UTC)


# --- the worker's side: counting ---------------------------------------------------------


@dataclass(frozen=True)
class Measured:
    """What a count found, kept apart from writing it (the reading takes seconds at a
    million users; the writing is short and is the only part holding the write lock)."""

    today: dict[Key, int]
    past: dict[date, dict[Key, int]] | None  # None: the past is already counted
    runs: dict[int, dict[Key, int]]  # run id -> users by (team, level), runs not counted


def measure(db: Session, organization_id: int, today: date) -> Measured:
    """Count the organization's users by team and status now; the first time, rebuild the
    DAYS before TODAY from the audit log; and count the finished runs not counted yet."""
    first = (
        db.scalar(select(StatusDay.id).where(StatusDay.organization_id == organization_id).limit(1))
        is None
    )
    rows = db.execute(
        select(User.team_id, User.status, func.count())
        .where(User.organization_id == organization_id)
        .group_by(User.team_id, User.status)
    ).all()
    return Measured(
        today={(team, status): n for team, status, n in rows},
        past=backfill(db, organization_id, today) if first else None,
        runs=measure_runs(db, organization_id),
    )


def measure_runs(db: Session, organization_id: int) -> dict[int, dict[Key, int]]:
    """The latest finished runs not counted yet: users by (team, level) of each."""
    return {run.id: _levels_of(db, run.id) for run in _uncounted_runs(db, organization_id)}


def store_runs(db: Session, organization_id: int, runs: dict[int, dict[Key, int]]) -> int:
    """Write the runs' levels (those another writer has not written first); how many."""
    counted = set(db.scalars(select(RunLevel.run_id).where(RunLevel.run_id.in_(list(runs)))))
    todo = {run_id: levels for run_id, levels in runs.items() if run_id not in counted}
    for run_id, levels in todo.items():
        _store_levels(db, organization_id, run_id, levels)
    db.flush()
    return len(todo)


def store(db: Session, organization_id: int, today: date, measured: Measured) -> int:
    """Write MEASURED as TODAY's point (replacing an earlier count of the same day), with
    the rebuilt past and the runs' levels unless another writer was first. Returns how
    many days were written."""
    past_counted = db.scalar(
        select(StatusDay.id)
        .where(StatusDay.organization_id == organization_id, StatusDay.day != today)
        .limit(1)
    )
    db.execute(
        delete(StatusDay).where(
            StatusDay.organization_id == organization_id, StatusDay.day == today
        )
    )
    days = {today: measured.today}
    if measured.past is not None and past_counted is None:
        days |= measured.past
    _write_days(db, organization_id, days)
    store_runs(db, organization_id, measured.runs)
    return len(days)


def record_day(db: Session, organization_id: int, today: date) -> int:
    """Measure and store in one transaction (for tests and one-off use); days written."""
    return store(db, organization_id, today, measure(db, organization_id, today))


def _write_days(db: Session, organization_id: int, days: dict[date, dict[Key, int]]) -> None:
    values = [
        {"organization_id": organization_id, "day": day, "team_id": t, "status": s, "users": n}
        for day, counts in days.items()
        for (t, s), n in counts.items()
        if n
    ]
    for i in range(0, len(values), 1000):
        db.execute(insert(StatusDay), values[i : i + 1000])


def _created_bucket(db: Session) -> Any:
    """The UTC day a user was created on, as a string YYYY-MM-DD or a date."""
    if db.get_bind().dialect.name == "sqlite":
        return func.date(User.created_at)
    return func.date(func.timezone("UTC", User.created_at))


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def backfill(db: Session, organization_id: int, today: date) -> dict[date, dict[Key, int]]:
    """The counts at the end of each of the DAYS days before TODAY, rebuilt from today's
    statuses, users.created_at, and the status changes of the audit log.

    A user counts from the day they were created; on a day before a status change they
    are counted in the change's "from" status. Changes the audit log does not hold (none
    are made without an audit row today) cannot be undone, so they show from the start.
    """
    days = [today - timedelta(days=DAYS - i) for i in range(DAYS)]
    first, n = days[0], len(days)

    def index(at: datetime | date) -> int:
        """The first day whose end is after AT (n: none)."""
        day = at.astimezone(UTC).date() if isinstance(at, datetime) else at
        return min(max((day - first).days, 0), n)

    diff: dict[Key, list[int]] = defaultdict(lambda: [0] * (n + 1))
    bucket = _created_bucket(db)
    rows = db.execute(
        select(User.team_id, User.status, bucket, func.count())
        .where(User.organization_id == organization_id)
        .group_by(User.team_id, User.status, bucket)
    ).all()
    for team, status, created, count in rows:
        diff[(team, status)][index(_as_date(created))] += count

    changes: dict[int, list[tuple[datetime, str]]] = defaultdict(list)
    events = db.execute(
        select(AuditEvent.target_id, AuditEvent.occurred_at, AuditEvent.changes)
        .where(
            AuditEvent.organization_id == organization_id,
            AuditEvent.target_type == "user",
            AuditEvent.occurred_at >= _start_of(first + timedelta(days=1)),
        )
        .order_by(AuditEvent.occurred_at, AuditEvent.id)
    )
    for target, at, change in events:
        status = change.get("status") if isinstance(change, dict) else None
        if isinstance(status, dict) and "from" in status and target and target.isdigit():
            changes[int(target)].append((at, str(status["from"])))

    ids = sorted(changes)
    for i in range(0, len(ids), CHUNK):
        users = db.execute(
            select(User.id, User.team_id, User.status, User.created_at).where(
                User.organization_id == organization_id, User.id.in_(ids[i : i + CHUNK])
            )
        ).all()
        for user_id, team, current, created in users:
            born, lo = index(created), 0
            for at, before in changes[user_id]:
                hi = index(at)
                start, end = max(lo, born), hi
                if before != current and start < end:
                    diff[(team, current)][start] -= 1
                    diff[(team, current)][end] += 1
                    diff[(team, before)][start] += 1
                    diff[(team, before)][end] -= 1
                lo = hi

    out: dict[date, dict[Key, int]] = {day: {} for day in days}
    for key, deltas in diff.items():
        running = 0
        for i, day in enumerate(days):
            running += deltas[i]
            if running:
                out[day][key] = running
    return out


def _levels_of(db: Session, run_id: int) -> dict[Key, int]:
    """A run's users by team and level, a row per level even when empty (so that the
    run shows as counted)."""
    rows = db.execute(
        select(User.team_id, ChurnScore.level, func.count())
        .join(User, User.id == ChurnScore.user_id)
        .where(ChurnScore.run_id == run_id)
        .group_by(User.team_id, ChurnScore.level)
    ).all()
    counted: dict[Key, int] = {(team, level): n for team, level, n in rows}
    for level in LEVELS:
        counted.setdefault((None, level), 0)
    return counted


def _store_levels(db: Session, organization_id: int, run_id: int, counted: dict[Key, int]) -> None:
    db.execute(
        insert(RunLevel),
        [
            {
                "organization_id": organization_id,
                "run_id": run_id,
                "team_id": team,
                "level": level,
                "users": n,
            }
            for (team, level), n in counted.items()
        ],
    )


def _latest_runs(db: Session, organization_id: int, runs: int) -> list[ChurnRun]:
    return list(
        db.scalars(
            select(ChurnRun)
            .where(ChurnRun.organization_id == organization_id, ChurnRun.finished_at.is_not(None))
            .order_by(ChurnRun.as_of.desc(), ChurnRun.id.desc())
            .limit(runs)
        )
    )


def _uncounted_runs(db: Session, organization_id: int, runs: int = RUNS) -> list[ChurnRun]:
    recent = _latest_runs(db, organization_id, runs)
    counted = set(
        db.scalars(
            select(RunLevel.run_id).where(RunLevel.run_id.in_([r.id for r in recent])).distinct()
        )
    )
    return [run for run in recent if run.id not in counted]


# --- the page's side: reading ------------------------------------------------------------


@dataclass(frozen=True)
class StatusHistory:
    days: list[date]  # oldest first, the days counted
    series: dict[str, list[int]]  # status -> users on each day


@dataclass(frozen=True)
class RunLevels:
    run_id: int
    as_of: datetime
    counts: dict[str, int]  # level -> users


@dataclass(frozen=True)
class AtRisk:
    user_id: int
    name: str
    email: str
    probability: float
    level: str
    reasons: list[str]


@dataclass(frozen=True)
class Dashboard:
    statuses: StatusHistory
    runs: list[RunLevels]  # oldest first; empty without churn access or runs
    at_risk: list[AtRisk]
    churn_visible: bool  # whether the actor may see churn figures at all
    levels_pending: bool = False  # the latest run is not counted by level yet
    scored: bool = False  # a scoring run has finished (counted or not)


def status_history(db: Session, *, actor: Actor, today: date, days: int = DAYS) -> StatusHistory:
    """Users by status on each counted day of the last DAYS, within the actor's reach.

    Raises:
        PermissionDenied: the actor may not list users.
    """
    access.require(actor, Permission.USERS_READ)
    scope = actor.team_scope(Permission.USERS_READ)
    query = select(StatusDay.day, StatusDay.status, func.sum(StatusDay.users)).where(
        StatusDay.organization_id == actor.organization_id,
        StatusDay.day > today - timedelta(days=days),
        StatusDay.day <= today,
        StatusDay.status.in_(SHOWN_STATUSES),
    )
    if scope is not None:
        query = query.where(StatusDay.team_id.in_(sorted(scope)))
    rows = db.execute(query.group_by(StatusDay.day, StatusDay.status)).all()
    counted = sorted({_as_date(day) for day, _, _ in rows})
    where = {day: i for i, day in enumerate(counted)}
    series = {status: [0] * len(counted) for status in SHOWN_STATUSES}
    for day, status, n in rows:
        series[status][where[_as_date(day)]] = int(n)
    return StatusHistory(days=counted, series=series)


def run_levels(db: Session, *, actor: Actor, runs: int = RUNS) -> list[RunLevels]:
    """Users at each churn level in the latest RUNS runs (oldest first), within reach;
    runs the worker has not counted yet are left out (counting takes seconds).

    Raises:
        PermissionDenied: the actor may not see users' activity.
    """
    access.require(actor, Permission.USERS_ACTIVITY)
    recent = _latest_runs(db, actor.organization_id, runs)
    counted = set(
        db.scalars(
            select(RunLevel.run_id).where(RunLevel.run_id.in_([r.id for r in recent])).distinct()
        )
    )
    recent = [run for run in recent if run.id in counted]
    ids = [run.id for run in recent]
    scope = actor.team_scope(Permission.USERS_ACTIVITY)
    query = select(RunLevel.run_id, RunLevel.level, func.sum(RunLevel.users)).where(
        RunLevel.run_id.in_(ids)
    )
    if scope is not None:
        query = query.where(RunLevel.team_id.in_(sorted(scope)))
    counts: dict[int, dict[str, int]] = {run_id: dict.fromkeys(LEVELS, 0) for run_id in ids}
    for run_id, level, n in db.execute(query.group_by(RunLevel.run_id, RunLevel.level)):
        counts[run_id][level] = int(n)
    return [RunLevels(run.id, run.as_of, counts[run.id]) for run in reversed(recent)]


def most_at_risk(
    db: Session, *, actor: Actor, limit: int = TOP, run_id: int | None = None
) -> list[AtRisk]:
    """The users of run RUN_ID (else the latest) most likely to churn, within the actor's
    reach: only those retention is for, active users (not Not Activated, nor disabled,
    banned, trashed or deleted, whatever they were when scored).

    Raises:
        PermissionDenied: the actor may not see users' activity.
    """
    access.require(actor, Permission.USERS_ACTIVITY)
    if run_id is None:
        latest = _latest_runs(db, actor.organization_id, 1)
        if not latest:
            return []
        run_id = latest[0].id
    rows = db.execute(
        select(
            User.id,
            User.first_name,
            User.last_name,
            User.email,
            ChurnScore.probability,
            ChurnScore.level,
            ChurnScore.reasons,
        )
        .join(User, User.id == ChurnScore.user_id)
        .where(
            ChurnScore.run_id == run_id,
            access.users_in_scope(actor, Permission.USERS_ACTIVITY),
            User.status == UserStatus.ACTIVE.value,
        )
        .order_by(ChurnScore.probability.desc(), ChurnScore.user_id)
        .limit(limit)
    ).all()
    return [
        AtRisk(
            user_id=uid,
            name=f"{first} {last}".strip() or email,
            email=email,
            probability=probability,
            level=level,
            reasons=list(reasons or []),
        )
        for uid, first, last, email, probability, level, reasons in rows
    ]


def dashboard(db: Session, *, actor: Actor, today: date | None = None) -> Dashboard:
    """Every figure of the dashboard for ACTOR (churn ones only with users.activity).

    Raises:
        PermissionDenied: the actor may not list users.
    """
    today = today or datetime.now(UTC).date()
    statuses = status_history(db, actor=actor, today=today)
    visible = actor.has(Permission.USERS_ACTIVITY)
    runs = run_levels(db, actor=actor) if visible else []
    latest = _latest_runs(db, actor.organization_id, 1) if visible else []
    # Levels and the users most at risk come from the same run, the latest counted one:
    # the page never shows one filled and the other empty.
    at_risk = most_at_risk(db, actor=actor, run_id=runs[-1].run_id) if runs else []
    return Dashboard(
        statuses=statuses,
        runs=runs,
        at_risk=at_risk,
        churn_visible=visible,
        levels_pending=bool(latest) and (not runs or runs[-1].run_id != latest[0].id),
        scored=bool(latest),
    )
