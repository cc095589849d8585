"""Scoring every user of an organization as of a moment: a job, set-based.

The run first says why it may find nobody to score or too little history (`readiness`,
in the job's problems), calibrates the score on a backtest (the same features one horizon
earlier, against who then churned as the organization defines it), chooses the event
types worth features (`event_types`) and the model (boosting.for_run), then goes through
the users in id ranges: one statement reads each range's users with their last event and
sign-in (`_statement`), a second their events of the last 90 days, each placed in its
type and windows, in one pass over the (user_id, occurred_at, type) index
(`_event_statement`), both as the driver's tuples; numpy adds them up into the features,
per user and per type, and those into predictions, on a thread and a connection of their
own while the range before is written (the first ranges are read while the model is
trained): its scores go in with a few multi-row INSERTs (COPY on PostgreSQL), the levels
and probabilities that changed with a few UPDATEs. Every run keeps its scores (the
history), and records what it predicted in words, its event types and its model.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import repeat
from typing import Any

import numpy as np
from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Integer,
    Row,
    Select,
    and_,
    case,
    cast,
    func,
    literal,
    select,
    true,
)
from sqlalchemy import Float as SqlFloat
from sqlalchemy.orm import Session

from userdesk.access import service as access
from userdesk.access.rules import Actor, Permission
from userdesk.activity.models import NOT_THE_USERS_DOING, ActivityEvent
from userdesk.audit import service as audit
from userdesk.audit.models import AuditEvent
from userdesk.churn import boosting, model
from userdesk.churn import definition as churn_definition
from userdesk.churn import rules as churn_rules
from userdesk.churn import settings as churn_settings
from userdesk.churn.definition import ChurnDefinition
from userdesk.churn.features import (
    AT_WEEKS_START,
    DAY,
    IN_WEEKS,
    LAST_7,
    LAST_28,
    LOGIN,
    PREVIOUS_28,
    WEEKS,
    FeatureColumns,
    Floats,
)
from userdesk.churn.models import ChurnRun, ChurnScore
from userdesk.churn.rules import cutoffs_of
from userdesk.db import bulk
from userdesk.db.base import UTCDateTime, utcnow
from userdesk.db.engine import log_grows, unindexed
from userdesk.jobs import service as jobs
from userdesk.jobs.models import Job
from userdesk.organizations.models import Organization
from userdesk.users.models import User
from userdesk.webhooks import events as webhook_events

KIND = "churn.score"
MODEL = "transparent-v1"
RANGE = 50_000  # users per step (one transaction)
READ_WHILE_TRAINING = 6  # ranges read ahead while the first step trains the model
READ_AHEAD = 2  # ranges read and predicted at once (a thread each) while one is written
BACKTEST_SAMPLE = 20_000
SCORED_STATUSES = ("pending", "active", "disabled", "banned")  # not trashed or deleted


def _days_before(dialect: str, as_of: datetime, at: Any) -> Any:
    """The days (with their fraction) from AT to AS_OF."""
    if dialect == "sqlite":
        moment = literal(as_of.astimezone(UTC).replace(tzinfo=None))
        return func.julianday(moment) - func.julianday(at)
    return func.extract("epoch", literal(as_of, UTCDateTime) - at) / 86_400


UserIds = Callable[[Any], ColumnElement[bool]]  # user id column -> which users

# Event types as signal: those with enough volume among a sample of users over the year
# before, at most MAX_TYPES, the most frequent first.
TYPE_SAMPLE = 20_000
TYPE_SHARE = 0.01  # of the sample's events
TYPE_USERS = 20  # distinct users who sent the type
MAX_TYPES = 20
WEIGHT_PROPERTIES = ("count", "quantity")  # a number there weighs the event
WEIGHT_SETTING = "churn_weight_property"  # one more, named by the organization


def _weight_properties(organization: Organization | None) -> tuple[str, ...]:
    named = organization.settings.get(WEIGHT_SETTING) if organization is not None else None
    return (named, *WEIGHT_PROPERTIES) if named else WEIGHT_PROPERTIES


def _number_in(dialect: str, name: str) -> Any:
    """The event's property NAME where it is a number, else NULL."""
    props = ActivityEvent.properties
    if dialect == "sqlite":
        path = f'$."{name}"'
        return case(
            (
                func.json_type(props, path).in_(("integer", "real")),
                func.json_extract(props, path),
            )
        )
    return case(
        (
            func.json_typeof(props.op("->")(name)) == "number",
            cast(props.op("->>")(name), SqlFloat),
        )
    )


def event_types(db: Session, organization_id: int, as_of: datetime) -> list[dict[str, Any]]:
    """The organization's event types worth features as of AS_OF, as {"name",
    "weighted"} (weighted: some of its events carry a number to count), chosen on a sample
    of users from the year before: at least TYPE_SHARE of the events and TYPE_USERS users,
    at most MAX_TYPES, the most frequent first."""
    dialect = _dialect(db)
    ids = sample_of(db, organization_id, TYPE_SAMPLE)
    properties = _weight_properties(db.get(Organization, organization_id))
    has_number = func.coalesce(*(_number_in(dialect, p) for p in properties)).is_not(None)
    rows = db.execute(
        select(
            ActivityEvent.type,
            func.count(),
            func.count(func.distinct(ActivityEvent.user_id)),
            func.sum(case((has_number, 1), else_=0)),
        )
        .where(
            ids(ActivityEvent.user_id),
            ActivityEvent.organization_id == organization_id,
            ActivityEvent.occurred_at < as_of,
            ActivityEvent.occurred_at >= as_of - 365 * DAY,
            ActivityEvent.type.not_in(NOT_THE_USERS_DOING),
        )
        .group_by(ActivityEvent.type)
    ).all()
    total = sum(row[1] for row in rows)
    kept = sorted(
        (row for row in rows if row[1] >= TYPE_SHARE * total and row[2] >= TYPE_USERS),
        key=lambda row: (-row[1], row[0]),
    )[:MAX_TYPES]
    return [{"name": row[0], "weighted": bool(row[3])} for row in kept]


def _event_statement(
    db: Session,
    organization_id: int,
    as_of: datetime,
    ids: UserIds,
    types: Sequence[dict[str, Any]],
) -> Select[Any]:
    """A row per event of the user's doing (of IDS) in the 90 days before AS_OF (the
    longest window; the last event ever is `_statement`'s), laid out as EVENT_ROW: its
    type's place in TYPES, its age in days, the windows it falls in, its weight (a
    weighted type's). One pass over that part of the (user_id, occurred_at, type) index,
    whose entries are enough but for the weighted types (their properties); numpy adds
    the rows up (`EventSums`), which costs less than grouping them here and reading the
    groups."""
    dialect = _dialect(db)
    at = ActivityEvent.occurred_at
    names = [t["name"] for t in types]
    weighted = [t["name"] for t in types if t["weighted"]]

    def since(days: int) -> datetime:
        return as_of - days * DAY

    weight: Any = literal(0)
    if weighted:
        properties = _weight_properties(db.get(Organization, organization_id))
        number = func.coalesce(*(_number_in(dialect, p) for p in properties), 1)
        # the number where positive, else 0: read once (a CASE would read it twice)
        positive = func.max if dialect == "sqlite" else func.greatest
        weight = case((ActivityEvent.type.in_(weighted), positive(number, 0)), else_=0)
    start = since(7 * WEEKS)
    # The windows nest (the last 7 days within the last 28, those within the weeks, which
    # start before the previous 28 days): one CASE, stopping at the first bound the event
    # passes, gives what a flag per window added up would, for fewer comparisons a row.
    windows = case(
        (at >= since(7), LAST_7 | LAST_28 | IN_WEEKS),
        (at >= since(28), LAST_28 | IN_WEEKS),
        (at >= since(56), PREVIOUS_28 | IN_WEEKS),
        (at > start, IN_WEEKS),
        (at == start, AT_WEEKS_START),
        else_=0,
    )
    kind = (
        case({name: k for k, name in enumerate(names)}, value=ActivityEvent.type, else_=-1)
        if names
        else literal(-1)
    )
    return select(
        ActivityEvent.user_id,
        kind,
        _days_before(dialect, as_of, at),
        windows,
        weight,
    ).where(
        at < as_of,
        at >= since(90),
        ids(ActivityEvent.user_id),
        ActivityEvent.type.not_in(NOT_THE_USERS_DOING),
    )


def _features(
    rows: Sequence[Sequence[Any]], events: Sequence[Sequence[Any]], types: Sequence[dict[str, Any]]
) -> FeatureColumns:
    """The features of the users of ROWS (of _statement, maybe with more columns after)
    from EVENTS (of _event_statement), with those of each event type in TYPES."""
    names = [t["name"] for t in types]
    weighted = {t["name"] for t in types if t["weighted"]}
    return FeatureColumns.of_rows(rows, events, names, weighted)


def features_of(
    db: Session,
    organization_id: int,
    as_of: datetime,
    ids: UserIds,
    types: Sequence[dict[str, Any]] = (),
) -> tuple[Sequence[Row[Any]], FeatureColumns]:
    """The rows of _statement for the users IDS selects and their features as of AS_OF
    (with those of each event type in TYPES)."""
    rows = db.execute(_statement(_dialect(db), organization_id, as_of, ids)).all()
    events = db.execute(_event_statement(db, organization_id, as_of, ids, types)).all()
    return rows, _features(rows, events, types)


def _before_changes(organization_id: int, as_of: datetime, key: str, kind: str) -> Any:
    """Per user (user_id, value): KEY's "from" in the earliest audit event at or after
    AS_OF that changed it (the audit log's {KEY: {"from", "to"}}), which is what KEY was
    at AS_OF; users with no such change are absent (KEY is the same now). One pass over the
    organization's audit events since AS_OF, a derived table to join."""
    found = AuditEvent.changes[(key, "from")]
    value = found.as_boolean() if kind == "boolean" else found.as_string()
    ranked = (
        select(
            cast(AuditEvent.target_id, Integer).label("user_id"),
            value.label("value"),
            func.row_number()
            .over(
                partition_by=AuditEvent.target_id,
                order_by=(AuditEvent.occurred_at, AuditEvent.id),
            )
            .label("n"),
        )
        .where(
            AuditEvent.organization_id == organization_id,
            AuditEvent.occurred_at >= as_of,
            AuditEvent.target_type == "user",
            value.is_not(None),
        )
        .subquery()
    )
    return select(ranked.c.user_id, ranked.c.value).where(ranked.c.n == 1).subquery()


def _standing(
    organization_id: int, as_of: datetime
) -> tuple[Any, Any, Callable[[Select[Any]], Select[Any]]]:
    """The status and the validation each user had at AS_OF (as SQL expressions), and
    what adds to a statement on users the joins they read: today's values taken back
    through the audit log's changes since AS_OF."""
    status = _before_changes(organization_id, as_of, "status", "string")
    validated = _before_changes(organization_id, as_of, "validated", "boolean")
    was_validated = and_(User.validated_at.is_not(None), User.validated_at < as_of)
    validated_then = case(
        (validated.c.user_id.is_not(None), validated.c.value), else_=was_validated
    )

    def joined(statement: Select[Any]) -> Select[Any]:
        return statement.outerjoin(status, status.c.user_id == User.id).outerjoin(
            validated, validated.c.user_id == User.id
        )

    return func.coalesce(status.c.value, User.status), validated_then, joined


def _statement(dialect: str, organization_id: int, as_of: datetime, ids: UserIds) -> Select[Any]:
    """Each user's id and the features FeatureColumns.ROW lays out, as of AS_OF, for the
    users IDS selects (their counts: `_event_statement`). Everything is read as it was at
    AS_OF: the users created before it, in a status scored then (see `_standing`), their
    email verified, their last event and login event, and the last sign-in a client sent
    (last_login_at), before it."""

    def flag(condition: ColumnElement[bool]) -> Any:
        return case((condition, 1), else_=0)

    status, validated, joined = _standing(organization_id, as_of)
    last_event, last_login, with_last = _last_events(dialect, as_of, ids)
    sent = case((User.last_login_at < as_of, User.last_login_at))  # backfilled, or the last
    return with_last(
        joined(
            select(
                User.id,
                _days_before(dialect, as_of, User.created_at).label("tenure_days"),
                flag(
                    and_(User.email_verified_at.is_not(None), User.email_verified_at < as_of)
                ).label("verified"),
                flag(validated).label("validated"),
                flag(status != "pending").label("accepted"),
                _days_before(dialect, as_of, last_event).label("days_since_event"),
                _days_before(dialect, as_of, last_login).label("days_since_login_event"),
                _days_before(dialect, as_of, sent).label("days_since_login_sent"),
            )
        )
    ).where(
        User.organization_id == organization_id,
        status.in_(SCORED_STATUSES),
        User.created_at < as_of,
        ids(User.id),
    )


def _last_events(
    dialect: str, as_of: datetime, ids: UserIds
) -> tuple[Any, Any, Callable[[Select[Any]], Select[Any]]]:
    """The moment of the user's last event of their doing before AS_OF and of their last
    login event (SQL expressions on a statement on users), and what adds to that statement
    what they read. SQLite: each found going back along the (user_id, occurred_at, type)
    index from AS_OF, an entry or a few a user however long the history. PostgreSQL: one
    pass over the users' events, grouped and joined (a correlated subquery there can be
    planned as a scan of every event for each user while the statistics lag behind)."""
    at = ActivityEvent.occurred_at
    doing = ActivityEvent.type.not_in(NOT_THE_USERS_DOING)
    if dialect == "sqlite":

        def last(*conditions: Any) -> Any:
            return (
                select(at)
                .where(ActivityEvent.user_id == User.id, at < as_of, *conditions)
                .order_by(at.desc())
                .limit(1)
                .scalar_subquery()
            )

        return last(doing), last(ActivityEvent.type == LOGIN), lambda statement: statement
    events = (
        select(
            ActivityEvent.user_id,
            func.max(at).label("event"),
            func.max(case((ActivityEvent.type == LOGIN, at))).label("login"),
        )
        .where(at < as_of, ids(ActivityEvent.user_id), doing)
        .group_by(ActivityEvent.user_id)
        .subquery()
    )

    def joined(statement: Select[Any]) -> Select[Any]:
        return statement.outerjoin(events, events.c.user_id == User.id)

    return events.c.event, events.c.login, joined


def _tuples(conn: Connection, statement: Select[Any]) -> list[tuple[Any, ...]]:
    """The rows of STATEMENT as the driver gives them, tuples: the bulk reads' values
    need no conversion, and a SQLAlchemy Row per row cost about as much as the query."""
    result = conn.execute(statement)
    try:
        return list(result.cursor.fetchall())
    finally:
        result.close()


def _dialect(db: Session) -> str:
    return db.get_bind().dialect.name


def _in_range(after: int, size: int) -> UserIds:
    return lambda column: and_(column > after, column <= after + size)


def sample_of(db: Session, organization_id: int, size: int) -> UserIds:
    """About SIZE of the organization's users: every n-th by id. (Their events are then
    found through the users' index, not by reading every event.)"""
    users = db.scalar(select(func.count()).where(User.organization_id == organization_id))
    step = max(1, (users or 0) // size)
    if step == 1:
        return lambda column: true()
    chosen = select(User.id).where(User.organization_id == organization_id, User.id % step == 0)
    return lambda column: column.in_(chosen)


def _users_with(
    organization_id: int, ids: UserIds, kinds: Sequence[str], start: Any, end: Any
) -> Select[int]:
    """The users (of IDS) with an event of KINDS (any of the user's doing when empty) from
    START (inclusive; None: ever) to END (exclusive), once each: a statement read on its
    own, in one pass (a correlated EXISTS per user can get a generic plan on PostgreSQL
    that reads every event for every user, and a derived table joined to the users, a
    plan on SQLite that reads it whole for every user)."""
    at = ActivityEvent.occurred_at
    conditions = [
        ActivityEvent.organization_id == organization_id,
        ids(ActivityEvent.user_id),
        at < end,
        ActivityEvent.type.in_(kinds) if kinds else ActivityEvent.type.not_in(NOT_THE_USERS_DOING),
    ]
    if start is not None:
        conditions.append(at >= start)
    return select(ActivityEvent.user_id).where(*conditions).group_by(ActivityEvent.user_id)


def labelled(
    db: Session,
    organization_id: int,
    at: datetime,
    *,
    sample: int,
    horizon: timedelta = churn_rules.HORIZON_DAYS * DAY,
    churn: ChurnDefinition = churn_definition.DEFAULT,
    types: Sequence[dict[str, Any]] | None = None,
) -> tuple[FeatureColumns, Floats]:
    """The features as of AT of a sample of users (with those of each event type in
    TYPES; chosen as of AT when None), and whether each churned in the HORIZON after as
    CHURN defines it (1.0); only the users in its scope when it has one."""
    ids = sample_of(db, organization_id, sample)
    event = churn.kind == churn_definition.EVENT
    kinds = [churn.event_type or ""] if event else list(churn.activity_types)

    def users_with(kinds: Sequence[str], start: datetime | None, end: datetime) -> set[int]:
        return set(db.scalars(_users_with(organization_id, ids, kinds, start, end)))

    happened = users_with(kinds, at, at + horizon)
    rows = _tuples(db.connection(), _statement(_dialect(db), organization_id, at, ids))
    if churn.scoped:
        scope_kinds = [churn.scope_type] if churn.scope_type else []
        active = users_with(scope_kinds, at - churn.scope_days * DAY, at)
        gone = users_with(kinds, None, at) if event else set()  # who already did it
        rows = [row for row in rows if row[0] in active and row[0] not in gone]
    churned = np.array([(row[0] in happened) == event for row in rows], dtype=np.float64)
    chosen = event_types(db, organization_id, at) if types is None else types
    events = _tuples(db.connection(), _event_statement(db, organization_id, at, ids, chosen))
    return _features(rows, events, chosen), churned


def backtest(
    db: Session,
    organization_id: int,
    as_of: datetime,
    cutoffs: tuple[float, float] = churn_rules.DEFAULT_CUTOFFS,
    *,
    churn: ChurnDefinition = churn_definition.DEFAULT,
) -> dict[str, Any]:
    """Features HORIZON days before AS_OF against who then churned (by default, went
    quiet): the calibration (Platt scaling of the score), and how well the levels would
    have told."""
    snapshot = as_of - churn.days * DAY
    columns, went_quiet = labelled(
        db,
        organization_id,
        snapshot,
        sample=BACKTEST_SAMPLE,
        horizon=churn.days * DAY,
        churn=churn,
        types=[],
    )
    scores = model.scores(columns).tolist()
    churned = [bool(x) for x in went_quiet.tolist()]
    fitted = model.fit_calibration(scores, churned)
    # Who was active in the HORIZON before the snapshot is "at risk" or not; who was not
    # is already inactive, and reported apart.
    active = (columns.days_since_event <= churn_rules.HORIZON_DAYS).tolist()  # NaN: never
    by_level: dict[str, list[bool]] = {name: [] for name in churn_rules.LEVELS}
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


MIN_HISTORY_DAYS = 60  # of events before the moment: a horizon observed, and one before


def readiness(db: Session, organization_id: int, as_of: datetime) -> list[str]:
    """Why a scoring as of AS_OF would find nobody to score, or too little history to
    calibrate or train, in words that say what to send (empty: ready)."""
    day = f"{as_of:%Y-%m-%d}"
    status, _, joined = _standing(organization_id, as_of)
    scored = (
        User.organization_id == organization_id,
        status.in_(SCORED_STATUSES),
        User.created_at < as_of,
    )
    # Whether anyone is scored: the first found (they are counted only to say so).
    anyone = db.scalar(joined(select(User.id)).where(*scored).limit(1))
    if anyone is None:
        later = db.scalar(
            select(func.count()).select_from(User).where(User.organization_id == organization_id)
        )
        return [
            f"Nobody to score as of {day}: no user was created before it"
            + (f" (the {later:,} users there are were all created later)" if later else "")
            + ". Send your users with the date they really signed up: POST /api/v1/users "
            "with created_at, or the created_at column of a CSV import."
        ]
    doing = (
        ActivityEvent.organization_id == organization_id,
        ActivityEvent.occurred_at < as_of,
        ActivityEvent.type.not_in(NOT_THE_USERS_DOING),
    )
    # History enough: one event that old, the first found (the first event of all, a
    # walk over every event of the organization, 1.6 s at 6.8 M, only to say what lacks).
    early = as_of - MIN_HISTORY_DAYS * DAY
    old_enough = select(ActivityEvent.id).where(*doing, ActivityEvent.occurred_at <= early)
    if db.scalar(old_enough.limit(1)) is not None:
        return []
    first = db.scalar(select(func.min(ActivityEvent.occurred_at)).where(*doing))
    if first is None:
        users = db.scalar(joined(select(func.count()).select_from(User)).where(*scored)) or 0
        return [
            f"No event before {day}: the {users:,} users would all be scored on their sign-up "
            "alone. Send what they did, past events included, with POST /api/v1/events (up "
            "to 1,000 a request, each with its occurred_at)."
        ]
    if first.tzinfo is None:
        first = first.replace(tzinfo=UTC)
    span = (as_of - first) / DAY
    if span < MIN_HISTORY_DAYS:
        return [
            f"Too little history to calibrate: the first event is from {first:%Y-%m-%d}, "
            f"{span:.0f} days before {day}; calibrating needs {MIN_HISTORY_DAYS} days of events "
            "(a horizon to watch and one before it) and training a model more. Send older "
            "events with POST /api/v1/events, or score a later date."
        ]
    return []


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
    job.problems = [
        {"problem": problem} for problem in readiness(db, actor.organization_id, moment)
    ]
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
    """A step of the scoring with the cyclic garbage collector paused: a range makes
    millions of small objects (rows, lists, reasons) and none in a cycle, and with the
    collector on, each allocation burst walks them all again (about a seventh of the CPU
    of a 1 M-user scoring)."""
    paused = gc.isenabled()
    gc.disable()
    try:
        return _scoring_step(db, job, actor, base_url)
    except BaseException:
        log_grows(db.connection(), False)
        raise
    finally:
        if paused:
            gc.enable()


def _scoring_step(db: Session, job: Job, actor: Actor, base_url: str) -> bool:
    as_of = datetime.fromisoformat(job.params["as_of"])
    org = job.organization_id
    run_id = job.params.get("run_id")

    def statements(after: int, types: list[dict[str, Any]]) -> list[Select[Any]]:
        """The range's users with their features, and (TYPES) their events by type."""
        chosen = _in_range(after, RANGE)
        users = (
            _statement(_dialect(db), org, as_of, chosen)
            # last: the probability and the level until now
            .add_columns(User.churn_probability, User.churn_level)
            .order_by(User.id)
        )
        return [users, _event_statement(db, org, as_of, chosen, types)]

    if run_id is None:
        job.cursor = _range_after(db, org, job.cursor) or job.cursor
        chosen_types = event_types(db, org, as_of)

        def featured(read: Read) -> _Featured:
            """The range's features: those of the run's event types, which the model
            reads if it is trained on them, and the transparent one leaves aside."""
            return _Featured(read[0], _features(read[0], read[1], chosen_types))

        # the first ranges read, and their features added up, during the backtest and
        # the training
        ahead: int | None = job.cursor
        for _ in range(READ_WHILE_TRAINING):
            if ahead is None:
                break
            _read_ahead.start(
                db, job.id, ahead, statements(ahead, chosen_types), featured, predicts=False
            )
            ahead = _range_after(db, org, ahead + RANGE)
        organization = db.get_one(Organization, org)
        churn = churn_settings.of_organization(organization)
        run = ChurnRun(
            organization_id=org,
            as_of=as_of,
            model=MODEL,
            calibration={
                **backtest(db, org, as_of, cutoffs_of(organization), churn=churn),
                "churn": churn.as_setting(),
                "predicts": churn.sentence(),
                "event_types": chosen_types,
            },
        )
        db.add(run)
        db.flush()
        trained, choice = boosting.for_run(db, run)  # None: the transparent model
        run.calibration = {**run.calibration, "choice": choice}
        if trained is not None:
            run.model = trained.name
            run.calibration = {**run.calibration, "boosting": trained.summary}
        else:
            job.problems = [*job.problems, {"problem": choice["why"]}]
        job.params = {**job.params, "run_id": run.id}
        return False
    run = db.get_one(ChurnRun, run_id)
    calibration = model.Calibration(run.calibration["a"], run.calibration["b"])
    trained = boosting.for_run(db, run)[0] if run.model != MODEL else None
    types = run.calibration.get("event_types", []) if trained is not None else []
    cutoffs = cutoffs_of(db.get_one(Organization, org))
    after = job.cursor

    def predicted(read: Read | _Featured) -> _Predicted:
        """The range's rows, features and predictions (also run beside, read ahead)."""
        found = (
            read
            if isinstance(read, _Featured)
            else _Featured(read[0], _features(read[0], read[1], types))
        )
        predictions = _predict(found.columns, calibration, cutoffs, trained)
        return _Predicted(found.rows, _writes((org, run.id), found.rows, predictions))

    taken = _read_ahead.take(job.id, after)
    following = _range_after(db, org, after + RANGE)
    # the next ranges read, and predicted, while this one's scores are written
    ahead = following
    for _ in range(READ_AHEAD):
        if ahead is None:
            break
        _read_ahead.start(db, job.id, ahead, statements(ahead, types), predicted)
        ahead = _range_after(db, org, ahead + RANGE)
    ready = (
        taken
        if isinstance(taken, _Predicted)
        else predicted(taken or [_tuples(db.connection(), s) for s in statements(after, types)])
    )
    # the log copied into the database by the last step's commit (it holds the same
    # index pages, written again range after range, once instead of some twenty times)
    log_grows(db.connection(), following is not None)
    scored = _write(db, org, ready.writes)
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
    # The first id above AFTER by the primary key, the organization checked on the rows
    # met (SQLite would otherwise walk the organization's index over all its users).
    org = User.organization_id if _dialect(db) != "sqlite" else unindexed(User.organization_id)
    first = db.scalar(
        select(User.id).where(org == organization_id, User.id > after).order_by(User.id).limit(1)
    )
    return None if first is None else first - 1


Read = list[Sequence[Sequence[Any]]]  # a range's rows of each statement


@dataclass(frozen=True)
class _Featured:
    """A range's rows (of `_statement`) and their features, in the same order."""

    rows: Sequence[Sequence[Any]]
    columns: FeatureColumns


@dataclass(frozen=True)
class _Predicted:
    """A range's rows (of `_statement`), and what their predictions write."""

    rows: Sequence[Sequence[Any]]
    writes: _Writes


Ahead = Read | _Featured | _Predicted  # what a range read ahead is made into
Then = Callable[[Any], _Featured | _Predicted]  # Read or _Featured -> the next stage


class _ReadAhead:
    """The next ranges' rows, read on connections of their own while this range is scored,
    and once the model is known their predictions too, and the rows those write: the
    database adds up events, and numpy and the trees work, beside this range's scores
    written on the other core (SQLite lets go of the GIL while it steps). (A step writes
    scores, and the levels of its own range only: a range read ahead, levels included, is
    what it would read after the steps before it.) The first step, which trains the
    model, has the first READ_WHILE_TRAINING ranges read and their features added up
    meanwhile, their predictions made later."""

    def __init__(self) -> None:
        # Tasks start in the order they are given: a prediction (`_then`) waits only for
        # a read already started on another thread.
        self._pool = ThreadPoolExecutor(
            max_workers=READ_AHEAD, thread_name_prefix="churn-read-ahead"
        )
        self._lock = threading.Lock()
        # per step (job, cursor): what it reads, and whether that predicts too
        self._reading: dict[tuple[int, int], tuple[Future[Any], bool]] = {}

    def start(
        self,
        db: Session,
        job_id: int,
        after: int,
        statements: Sequence[Select[Any]],
        then: Then | None = None,
        *,
        predicts: bool = True,
    ) -> None:
        """Start reading the rows of STATEMENTS for the step of JOB_ID at cursor AFTER (and
        making them into features or predictions with THEN when given), after what is
        already being read; if that step's rows are already read or being read, and not
        yet predicted from, make what they were made into a prediction with THEN.
        PREDICTS: whether THEN predicts (else it adds up the features only)."""
        engine = db.get_bind()
        if not isinstance(engine, Engine):  # bound to one connection: nothing to read beside
            return
        with self._lock:
            read, predicted = self._reading.get((job_id, after), (None, False))
            if read is None:
                future = self._pool.submit(_rows, engine, statements, then)
                self._reading[(job_id, after)] = (future, then is not None and predicts)
            elif then is not None and not predicted:
                self._reading[(job_id, after)] = (self._pool.submit(_then, read, then), True)

    def take(self, job_id: int, after: int) -> Ahead | None:
        """The rows of each statement read ahead for this step (or, with THEN, what they
        were made into), or None (not started, or it failed)."""
        with self._lock:
            future, _ = self._reading.pop((job_id, after), (None, False))
            # what earlier steps of the job left (one that failed) is never taken
            self._reading = {
                key: f for key, f in self._reading.items() if key[0] != job_id or key[1] > after
            }
        if future is None or future.exception() is not None:
            return None
        found: Ahead = future.result()
        return found


def _then(read: Future[Any], then: Then) -> Ahead:
    """THEN of what READ made (a read started before the model was known)."""
    found = read.result()
    return found if isinstance(found, _Predicted) else then(found)


def _rows(engine: Engine, statements: Sequence[Select[Any]], then: Then | None = None) -> Ahead:
    with engine.connect() as conn:
        read: Read = [_tuples(conn, s) for s in statements]
    return read if then is None else then(read)


_read_ahead = _ReadAhead()


def _predict(
    columns: FeatureColumns,
    calibration: model.Calibration,
    cutoffs: tuple[float, float],
    trained: boosting.Booster | None = None,
) -> model.Predictions:
    return (
        trained.predict_all(columns, cutoffs)
        if trained is not None
        else model.predict_all(columns, calibration, cutoffs)
    )


def _rounded(values: Floats, digits: int) -> list[float]:
    """round(value, DIGITS) of each of VALUES, as Python rounds (to the nearest decimal),
    on the whole array: numpy's rounding of the scaled value agrees with it but where that
    value is within float error of a half, which Python rounds one by one."""
    scale = 10.0**digits
    scaled = values * scale
    found: list[float] = (np.rint(scaled) / scale).tolist()
    for i in np.flatnonzero(np.abs(scaled - np.floor(scaled) - 0.5) < 1e-6).tolist():
        found[i] = round(float(values[i]), digits)
    return found


@dataclass(frozen=True)
class _Writes:
    """What a range's step writes: its scores (rows of SCORE_COLUMNS), and the users whose
    level moved (user, level until now, level; the same with the probability kept) and
    those whose probability alone moved (user, probability kept)."""

    scores: list[tuple[Any, ...]]
    moved: list[tuple[int, Any, str]]
    level_moved: list[tuple[int, str, float]]
    probability_moved: list[tuple[int, float]]


def _writes(
    run: tuple[int, int], rows: Sequence[Sequence[Any]], predicted: model.Predictions
) -> _Writes:
    """The _Writes of the rows of a range (of `_statement`, the probability and the level
    until now last) and their predictions, for RUN (organization id, run id): made beside,
    where the range is read ahead, leaving the step its statements."""
    org, run_id = run
    ids = [row[0] for row in rows]
    json_text = bulk.json_text
    probabilities = np.asarray(predicted.probabilities, dtype=np.float64)
    scores = list(
        zip(
            repeat(org),
            repeat(run_id),
            ids,
            _rounded(probabilities, 4),
            predicted.levels,
            [json_text(reasons) if reasons else "[]" for reasons in predicted.reasons],
            strict=False,  # the repeats are endless
        )
    )
    # The row keeps the probability to 3 decimals (the list sorts by it) and the level:
    # only the rows where either moved are written. A level that moved is a change of
    # the user (updated_at, a webhook); a probability that moved within its level is
    # the score's own bookkeeping, written alone (its index only, not the level's).
    found = _Writes(scores, [], [], [])
    for user_id, level, kept, probability_was, level_was in zip(
        ids,
        predicted.levels,
        _rounded(probabilities, 3),
        [row[len(row) - 2] for row in rows],
        [row[-1] for row in rows],
        strict=True,
    ):
        if level_was != level:
            found.moved.append((user_id, level_was, level))
            found.level_moved.append((user_id, level, kept))
        elif probability_was != kept:
            found.probability_moved.append((user_id, kept))
    return found


def _write(db: Session, organization_id: int, writes: _Writes) -> int:
    conn = db.connection()
    _insert_scores(conn, writes.scores)
    now = bulk.sql_time(_dialect(db))(utcnow())
    bulk.update_rows(
        conn,
        "users",
        ("churn_level", "churn_probability"),
        writes.level_moved,
        same={"updated_at": now},
    )
    bulk.update_rows(conn, "users", ("churn_probability",), writes.probability_moved)
    webhook_events.churn_levels_changed(db, organization_id=organization_id, moved=writes.moved)
    return len(writes.scores)


SCORE_COLUMNS = ("organization_id", "run_id", "user_id", "probability", "level", "reasons")


def _insert_scores(conn: Connection, scores: Sequence[Sequence[Any]]) -> None:
    """Insert SCORES, rows of SCORE_COLUMNS, into churn_scores: on PostgreSQL through COPY
    (a range's 50,000 rows in one stream, no statement to parse or plan), elsewhere in
    multi-row INSERTs."""
    driver = conn.connection.driver_connection
    if conn.dialect.name != "postgresql" or driver is None:
        bulk.insert_rows(conn, "churn_scores", SCORE_COLUMNS, scores)
        return
    copying = f"COPY churn_scores ({', '.join(SCORE_COLUMNS)}) FROM STDIN"
    with driver.cursor() as cursor, cursor.copy(copying) as copy:
        for row in scores:
            copy.write_row(row)


def level_counts(db: Session, run: ChurnRun) -> dict[str, int]:
    """How many users of RUN are at each level."""
    return dict(
        db.execute(
            select(ChurnScore.level, func.count())
            .where(ChurnScore.run_id == run.id)
            .group_by(ChurnScore.level)
        ).all()
    )


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
