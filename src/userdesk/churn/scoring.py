"""Scoring every user of an organization as of a moment: a job, set-based.

The run first says why it may find nobody to score or too little history (`readiness`,
in the job's problems), calibrates the score on a backtest (the same features one horizon
earlier, against who then churned as the organization defines it), chooses the event
types worth features (`event_types`) and the model (boosting.for_run), then goes through
the users in id ranges. A range is read in two statements (`Reading`): its users' own
columns as of the moment, and one pass over their events, a row each (user, the event
type's index, its age in days, its weight), taken from the driver's cursor into numpy,
which adds them up per user and per event type (counts per window, recency, weeks) with
no Python per event. Each range is read on a connection of its own (a healthy read
replica's when there is one) while the range before is scored; numpy turns the features
into predictions, and the range's scores go in with a few multi-row INSERTs on the
primary, the levels that changed with one UPDATE run for each. Every run keeps its
scores (the history), and records what it predicted in words, its event types and its
model.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Integer,
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
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.sql import Executable

from userdesk.access import service as access
from userdesk.access.rules import Actor, Permission
from userdesk.activity.models import NOT_THE_USERS_DOING, ActivityEvent
from userdesk.audit import service as audit
from userdesk.audit.models import AuditEvent
from userdesk.churn import boosting, model
from userdesk.churn import definition as churn_definition
from userdesk.churn import settings as churn_settings
from userdesk.churn.definition import ChurnDefinition
from userdesk.churn.features import DAY, WEEKS, FeatureColumns, Floats, Ints, TypeColumns
from userdesk.churn.models import ChurnRun, ChurnScore
from userdesk.db import bulk, replicas
from userdesk.db.base import UTCDateTime, utcnow
from userdesk.db.engine import unindexed
from userdesk.db.replicas import Replica
from userdesk.jobs import service as jobs
from userdesk.jobs.models import Job
from userdesk.organizations.models import Organization
from userdesk.users.models import User
from userdesk.webhooks import events as webhook_events

KIND = "churn.score"
MODEL = "transparent-v1"
RANGE = 50_000  # users per step (one transaction)
BLOCK = 250_000  # users read at once, ahead of the steps (a few ranges)
SCAN_SHARE = 0.05  # of all users, from which a block's events are read in a table scan
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


def _weight(dialect: str, weighted: Sequence[str], properties: Sequence[str]) -> Any:
    """What an event counts for: the first number among PROPERTIES for the types that
    carry one (never below 0), else 1."""
    if not weighted:
        return literal(1)
    number = func.coalesce(*(_number_in(dialect, p) for p in properties), 1)
    return case((ActivityEvent.type.in_(weighted), case((number > 0, number), else_=0)), else_=1)


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


# The columns of a row of `Reading.users`, after the user's id.
USER_ROW = ("tenure_days", "verified", "validated", "accepted", "days_since_login_sent")
LOGIN = "login"


@dataclass(frozen=True)
class Reading:
    """What scoring reads of an organization's users as of AS_OF, and how: one statement
    on the users (their columns as they were then, `users`) and one pass over their
    events before AS_OF (`events`: a row per event, no grouping), which numpy adds up
    (`features`) into the user's counts, recency and weeks, and those of each event type
    of TYPES. Both are read with the driver's own cursor (`fetch`), not as ORM rows."""

    dialect: str
    organization_id: int
    as_of: datetime
    types: tuple[str, ...] = ()  # the event types read as features, the most frequent first
    weighted: tuple[str, ...] = ()  # those of TYPES some of whose events carry a number
    properties: tuple[str, ...] = WEIGHT_PROPERTIES  # where that number is found

    @classmethod
    def of(
        cls,
        db: Session,
        organization_id: int,
        as_of: datetime,
        types: Sequence[dict[str, Any]] = (),
    ) -> Reading:
        """The reading of the organization's users as of AS_OF, with TYPES (as
        `event_types` gives them) as features."""
        return cls(
            _dialect(db),
            organization_id,
            as_of,
            tuple(t["name"] for t in types),
            tuple(t["name"] for t in types if t["weighted"]),
            _weight_properties(db.get(Organization, organization_id)),
        )

    @property
    def kinds(self) -> tuple[str, ...]:
        """The event types told apart in `events` (their index there): TYPES, and the
        sign-ins (for the last one) if they are not among them."""
        return self.types if LOGIN in self.types else (*self.types, LOGIN)

    def users(self, ids: UserIds) -> Select[Any]:
        """The users of IDS scored as of AS_OF, each as (id, *USER_ROW): everything as it
        was then, the users created before it, in a status scored then (see
        `_standing`), their email verified and the last sign-in a client sent
        (`last_login_at`) before it."""
        as_of, dialect = self.as_of, self.dialect

        def flag(condition: ColumnElement[bool]) -> Any:
            return case((condition, 1), else_=0)

        status, validated, joined = _standing(self.organization_id, as_of)
        sent = case((User.last_login_at < as_of, User.last_login_at))  # backfilled, or the last
        verified = and_(User.email_verified_at.is_not(None), User.email_verified_at < as_of)
        return joined(
            select(
                User.id,
                _days_before(dialect, as_of, User.created_at).label("tenure_days"),
                flag(verified).label("verified"),
                flag(validated).label("validated"),
                flag(status != "pending").label("accepted"),
                _days_before(dialect, as_of, sent).label("days_since_login_sent"),
            )
        ).where(
            User.organization_id == self.organization_id,
            status.in_(SCORED_STATUSES),
            User.created_at < as_of,
            ids(User.id),
        )

    def events(self, ids: UserIds, *, scan: bool = False) -> Select[Any]:
        """The events of the users of IDS strictly before AS_OF that are the user's
        doing, a row each: (user id, its kind's index in KINDS or -1, the days before
        AS_OF, and when some of TYPES are weighted what the event counts for). SCAN:
        SQLite reads the whole table in its order instead of the users' index."""
        at = ActivityEvent.occurred_at
        kinds = self.kinds
        kind = case({name: k for k, name in enumerate(kinds)}, value=ActivityEvent.type, else_=-1)
        age = _days_before(self.dialect, self.as_of, at)
        if self.dialect != "sqlite":  # a float, not PostgreSQL's numeric
            age = cast(age, SqlFloat)
        columns = [ActivityEvent.user_id, kind, age]
        if self.weighted:
            columns.append(cast(_weight(self.dialect, self.weighted, self.properties), SqlFloat))
        user = unindexed(ActivityEvent.user_id) if scan else ActivityEvent.user_id
        return select(*columns).where(
            ids(user),
            at < self.as_of,
            ActivityEvent.type.not_in(NOT_THE_USERS_DOING),
        )

    def read(
        self, conn: Connection, users: Select[Any], ids: UserIds, *, scan: bool = False
    ) -> tuple[list[Any], FeatureColumns]:
        """The rows of USERS (a statement of `users`, maybe with more columns after
        USER_ROW) and their features, from the events of the users of IDS (SCAN: read
        in a pass over the whole table, not through the users' index)."""
        rows = fetch(conn, users)
        width = 1 + len(USER_ROW)
        table = np.array([row[:width] for row in rows], dtype=np.float64).reshape(len(rows), width)
        events = fetch_numbers(conn, self.events(ids, scan=scan), 4 if self.weighted else 3)
        return rows, self.features(table, events)

    def features(self, users: Floats, events: Floats) -> FeatureColumns:
        """The features of USERS (rows of `users`, numbers) from EVENTS (rows of
        `events`, numbers; those of other users are ignored)."""
        n = len(users)
        ids = users[:, 0].astype(np.int64)
        order = np.argsort(ids, kind="stable")
        who = events[:, 0].astype(np.int64)
        at = order[np.clip(np.searchsorted(ids, who, sorter=order), 0, max(n - 1, 0))]
        keep = ids[at] == who if n else np.zeros(len(who), dtype=bool)
        row, kind, age = at[keep], events[keep, 1].astype(np.int64), events[keep, 2]

        def count(chosen: npt.NDArray[np.bool_]) -> Floats:
            return np.bincount(row[chosen], minlength=n).astype(np.float64)

        recent = age < 7 * WEEKS
        logins = kind == self.kinds.index(LOGIN)
        user = dict(zip(USER_ROW, users[:, 1:].T, strict=True))
        table = np.column_stack(
            [
                user["tenure_days"],
                user["verified"],
                user["validated"],
                user["accepted"],
                count(age <= 7),
                count(age <= 28),
                count((age > 28) & (age <= 56)),
                count(age <= 90),
                _weeks(row[recent], age[recent], n),
                _least(row, age, n),
                np.fmin(user["days_since_login_sent"], _least(row[logins], age[logins], n)),
            ]
        )
        columns = FeatureColumns.of_rows(table)
        k = len(self.types)
        typed = (kind >= 0) & (kind < k) & (age <= 7 * WEEKS)
        cell, age = row[typed] * k + kind[typed], age[typed]
        weight = events[keep, 3][typed] if events.shape[1] > 3 else np.ones(len(age))

        def total(chosen: npt.NDArray[np.bool_]) -> Floats:
            found = np.bincount(cell[chosen], weights=weight[chosen], minlength=n * k)
            return np.asarray(found, dtype=np.float64).reshape(n, k)

        return columns.with_types(
            TypeColumns(
                self.types,
                last_7=total(age <= 7),
                last_28=total(age <= 28),
                previous_28=total((age > 28) & (age <= 56)),
                days_since=_least(cell, age, n * k).reshape(n, k),
                active_weeks=_weeks(cell, age, n * k).reshape(n, k),
            )
        )


def _least(at: Ints, values: Floats, size: int) -> Floats:
    """The least of VALUES at each index of AT, of SIZE indexes (NaN: none there)."""
    least = np.full(size, np.inf)
    np.minimum.at(least, at, values)
    least[np.isinf(least)] = np.nan
    return least


def _weeks(at: Ints, days: Floats, size: int) -> Floats:
    """How many distinct weeks (DAYS // 7) there are at each index of AT, of SIZE."""
    weeks = np.zeros(size, dtype=np.uint64)
    np.bitwise_or.at(weeks, at, np.left_shift(np.uint64(1), (days // 7).astype(np.uint64)))
    return np.bitwise_count(weeks).astype(np.float64)


def fetch(conn: Connection, statement: Executable) -> list[Any]:
    """The rows of STATEMENT as the driver gives them (tuples, no ORM or Row objects, no
    conversion of the values: numbers and text)."""
    result = conn.execute(statement)
    try:
        return list(result.cursor.fetchall()) if result.cursor is not None else []
    finally:
        result.close()


FETCH_BATCH = 100_000  # rows taken from the driver at a time


def fetch_numbers(conn: Connection, statement: Executable, width: int) -> Floats:
    """The rows of STATEMENT, WIDTH numbers each (no NULL), as a table: from the driver's
    cursor in batches, each turned into numpy at once."""
    result = conn.execute(statement)
    parts: list[Floats] = []
    try:
        cursor = result.cursor
        while cursor is not None and (batch := cursor.fetchmany(FETCH_BATCH)):
            flat = itertools.chain.from_iterable(batch)
            parts.append(np.fromiter(flat, dtype=np.float64, count=len(batch) * width))
    finally:
        result.close()
    if not parts:
        return np.zeros((0, width))
    return np.concatenate(parts).reshape(-1, width)


def features_of(
    db: Session,
    organization_id: int,
    as_of: datetime,
    ids: UserIds,
    types: Sequence[dict[str, Any]] = (),
) -> tuple[list[int], FeatureColumns]:
    """The ids of the users of IDS scored as of AS_OF, and their features (with those of
    TYPES)."""
    reading = Reading.of(db, organization_id, as_of, types)
    rows, columns = reading.read(db.connection(), reading.users(ids), ids)
    return [row[0] for row in rows], columns


def _dialect(db: Session) -> str:
    return db.get_bind().dialect.name


def _in_range(after: int, size: int) -> UserIds:
    return lambda column: and_(column > after, column <= after + size)


@contextmanager
def _reads_of(db: Session) -> Iterator[Connection]:
    """A connection for a bulk read of DB's data: a healthy read replica's when there is
    one (db.replicas), else DB's own (its transaction)."""
    replica = replicas.for_background_reads(db)
    if replica is None:
        yield db.connection()
        return
    try:
        conn = replica.engine.connect()
    except DBAPIError as exc:
        replica.mark_down(exc)
        yield db.connection()
        return
    with conn:
        yield conn


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
) -> Any:
    """The users (of IDS) with an event of KINDS (any of the user's doing when empty) from
    START (inclusive; None: ever) to END (exclusive), once each: a derived table to join,
    which the database reads in one pass (a correlated EXISTS per user can get a generic
    plan on PostgreSQL that reads every event for every user)."""
    at = ActivityEvent.occurred_at
    conditions = [
        ActivityEvent.organization_id == organization_id,
        ids(ActivityEvent.user_id),
        at < end,
        ActivityEvent.type.in_(kinds) if kinds else ActivityEvent.type.not_in(NOT_THE_USERS_DOING),
    ]
    if start is not None:
        conditions.append(at >= start)
    return (
        select(ActivityEvent.user_id).where(*conditions).group_by(ActivityEvent.user_id).subquery()
    )


def labelled(
    db: Session,
    organization_id: int,
    at: datetime,
    *,
    sample: int,
    horizon: timedelta = model.HORIZON_DAYS * DAY,
    churn: ChurnDefinition = churn_definition.DEFAULT,
    types: Sequence[dict[str, Any]] | None = None,
) -> tuple[FeatureColumns, Floats]:
    """The features as of AT of a sample of users (with those of each event type in
    TYPES; chosen as of AT when None), and whether each churned in the HORIZON after as
    CHURN defines it (1.0); only the users in its scope when it has one."""
    ids = sample_of(db, organization_id, sample)
    event = churn.kind == churn_definition.EVENT
    kinds = [churn.event_type or ""] if event else list(churn.activity_types)
    after = _users_with(organization_id, ids, kinds, at, at + horizon)
    happened = after.c.user_id.is_not(None)
    outcome = (happened if event else ~happened).label("churned")
    chosen = event_types(db, organization_id, at) if types is None else types
    reading = Reading.of(db, organization_id, at, chosen)
    statement = reading.users(ids).add_columns(outcome).outerjoin(after, after.c.user_id == User.id)
    if churn.scoped:
        scope_kinds = [churn.scope_type] if churn.scope_type else []
        active = _users_with(organization_id, ids, scope_kinds, at - churn.scope_days * DAY, at)
        statement = statement.join(active, active.c.user_id == User.id)
        if event:
            before = _users_with(organization_id, ids, kinds, None, at)
            statement = statement.outerjoin(before, before.c.user_id == User.id).where(
                before.c.user_id.is_(None)
            )
    with _reads_of(db) as conn:
        rows, columns = reading.read(conn, statement, ids)
    churned = np.array([bool(row[-1]) for row in rows], dtype=np.float64)
    return columns, churned


def backtest(
    db: Session,
    organization_id: int,
    as_of: datetime,
    cutoffs: tuple[float, float] = model.DEFAULT_CUTOFFS,
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


MIN_HISTORY_DAYS = 60  # of events before the moment: a horizon observed, and one before


def readiness(db: Session, organization_id: int, as_of: datetime) -> list[str]:
    """Why a scoring as of AS_OF would find nobody to score, or too little history to
    calibrate or train, in words that say what to send (empty: ready)."""
    day = f"{as_of:%Y-%m-%d}"
    status, _, joined = _standing(organization_id, as_of)
    users = db.scalar(
        joined(select(func.count()).select_from(User)).where(
            User.organization_id == organization_id,
            status.in_(SCORED_STATUSES),
            User.created_at < as_of,
        )
    )
    if not users:
        later = db.scalar(
            select(func.count()).select_from(User).where(User.organization_id == organization_id)
        )
        return [
            f"Nobody to score as of {day}: no user was created before it"
            + (f" (the {later:,} users there are were all created later)" if later else "")
            + ". Send your users with the date they really signed up: POST /api/v1/users "
            "with created_at, or the created_at column of a CSV import."
        ]
    first = db.scalar(
        select(func.min(ActivityEvent.occurred_at)).where(
            ActivityEvent.organization_id == organization_id,
            ActivityEvent.occurred_at < as_of,
            ActivityEvent.type.not_in(NOT_THE_USERS_DOING),
        )
    )
    if first is None:
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
    as_of = datetime.fromisoformat(job.params["as_of"])
    org = job.organization_id
    run_id = job.params.get("run_id")

    if run_id is None:
        job.cursor = _range_after(db, org, job.cursor) or job.cursor
        chosen_types = event_types(db, org, as_of)
        # read during the backtest and the training
        _read_ahead.start(db, _job_key(job), job.cursor, Reading.of(db, org, as_of, chosen_types))
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
    reading = Reading.of(db, org, as_of, types)
    cutoffs = cutoffs_of(db.get_one(Organization, org))
    after = job.cursor
    found = _read_ahead.take(_job_key(job), after) or _read_block(
        db.connection(), reading, after, RANGE, scan=_scans(db, after, RANGE)
    )
    following = _range_after(db, org, found.end)
    block_after = _range_after(db, org, found.block_end)
    if block_after is not None:  # the next block, unless already started
        _read_ahead.start(db, _job_key(job), block_after, reading)
    if found.on_replica:
        found = found.as_on(db.connection())
    scored = _write(db, run, found, calibration, cutoffs, trained)
    run.users += scored
    job.done += scored
    if following is not None:
        job.cursor = following
        return False
    run.finished_at = utcnow()
    _read_ahead.forget(_job_key(job))
    audit.record(
        db,
        actor=actor,
        action="churn.scored",
        target_type="churn_run",
        target_id=run.id,
        changes={"users": run.users, "as_of": as_of.isoformat(), "model": run.model},
    )
    return True


@dataclass(frozen=True)
class _Range:
    """Users as read to be scored, those with ids in (AFTER, END]: their ids (ascending),
    their features, and each one's probability and level until now; BLOCK_END: the end
    of the block they were read in (END when read alone); ON_REPLICA: read on a replica."""

    after: int
    end: int
    ids: list[int]
    columns: FeatureColumns
    before: list[tuple[float | None, str | None]]
    block_end: int
    on_replica: bool = False

    def part(self, after: int, end: int) -> _Range:
        """The users of this block with ids in (AFTER, END]."""
        ids = np.asarray(self.ids, dtype=np.int64)
        first, last = np.searchsorted(ids, [after, end], side="right").tolist()
        return _Range(
            after,
            end,
            self.ids[first:last],
            self.columns.take(np.arange(first, last, dtype=np.intp)),
            self.before[first:last],
            self.block_end,
            self.on_replica,
        )

    def as_on(self, primary: Connection) -> _Range:
        """The range read on a replica as the primary has it: the users it still holds
        (one deleted since is not scored), with the probability and level it holds (a
        replica may not have replayed the last scoring's yet)."""
        now = {
            row[0]: (row[1], row[2])
            for row in fetch(
                primary,
                select(User.id, User.churn_probability, User.churn_level).where(
                    User.id > self.after, User.id <= self.end
                ),
            )
        }
        kept = [i for i, user_id in enumerate(self.ids) if user_id in now]
        return _Range(
            self.after,
            self.end,
            [self.ids[i] for i in kept],
            self.columns.take(np.asarray(kept, dtype=np.intp)),
            [now[self.ids[i]] for i in kept],
            self.block_end,
        )


def _read_block(
    conn: Connection,
    reading: Reading,
    after: int,
    size: int,
    *,
    scan: bool = False,
    on_replica: bool = False,
) -> _Range:
    """The users with ids in (AFTER, AFTER + SIZE], read on CONN (SCAN: see `_scans`)."""
    chosen = _in_range(after, size)
    users = (
        reading.users(chosen)
        .add_columns(User.churn_probability, User.churn_level)  # last: until now
        .order_by(User.id)
    )
    rows, columns = reading.read(conn, users, chosen, scan=scan)
    return _Range(
        after,
        after + size,
        [row[0] for row in rows],
        columns,
        [(row[-2], row[-1]) for row in rows],
        after + size,
        on_replica,
    )


def _scans(db: Session, after: int, size: int) -> bool:
    """Whether the events of the users with ids in (AFTER, AFTER + SIZE] cost less read
    in one pass over the whole table, in its own order, than through the users' index:
    on SQLite, when those users are at least SCAN_SHARE of all (an event met through the
    index costs some 20 times one met in a scan: a random page each). PostgreSQL's planner
    chooses by itself."""
    if _dialect(db) != "sqlite":
        return False
    users = db.scalar(select(func.max(User.id))) or 0
    inside = db.scalar(select(func.count()).where(User.id > after, User.id <= after + size))
    return (inside or 0) >= SCAN_SHARE * users


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


class _ReadAhead:
    """The next block of users (BLOCK of them: a few steps' ranges), read on a connection
    of its own while the steps before score theirs: the database reads events on one core
    while numpy and the trees work on the other. On a healthy read replica, when there
    is one (db.replicas); the scores are written on the primary. (A step writes scores,
    and the levels of its own range only: the range read ahead, levels included, is what
    it would read after the step.)"""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="churn-read-ahead")
        self._lock = threading.Lock()
        # a job -> its blocks read or being read: (after, end, the reading)
        self._blocks: dict[str, list[tuple[int, int, Future[_Range]]]] = {}

    def start(self, db: Session, job_id: str, after: int, reading: Reading) -> None:
        """Start reading the block after AFTER for the steps of JOB_ID, as READING says
        (nothing if it is being read)."""
        engine = db.get_bind()
        if not isinstance(engine, Engine):  # bound to one connection: nothing to read beside
            return
        with self._lock:
            if any(start == after for start, _, _ in self._blocks.get(job_id, [])):
                return
        scan = _scans(db, after, BLOCK)
        replica = replicas.for_background_reads(db)
        future = self._pool.submit(_read_apart, engine, replica, reading, after, scan)
        with self._lock:
            self._blocks.setdefault(job_id, []).append((after, after + BLOCK, future))
            if len(self._blocks) > 8:  # jobs that ended without taking theirs
                self._blocks = {job_id: self._blocks[job_id]}

    def forget(self, job_id: str) -> None:
        """Let go of the blocks of JOB_ID (its last step is done)."""
        with self._lock:
            self._blocks.pop(job_id, None)

    def take(self, job_id: str, after: int) -> _Range | None:
        """The step's range after AFTER (at most RANGE users) from the block read ahead
        that holds it, or None (not started, or it failed)."""
        with self._lock:
            blocks = [b for b in self._blocks.get(job_id, []) if b[1] > after]
            self._blocks[job_id] = blocks  # those passed are let go
            holding = [future for start, end, future in blocks if start <= after < end]
        if not holding or holding[0].exception() is not None:
            return None
        block = holding[0].result()
        return block.part(after, min(after + RANGE, block.end))


def _job_key(job: Job) -> str:
    """A scoring job among the blocks read ahead: its id and moment (an id alone can be
    taken again by another job after a rollback)."""
    return f"{job.id}/{job.params['as_of']}/{job.created_at}"


def _read_apart(
    engine: Engine, replica: Replica | None, reading: Reading, after: int, scan: bool
) -> _Range:
    """The block after AFTER, read on a connection of its own: the REPLICA's, else
    ENGINE's (a replica that fails is marked down, and the step reads on the primary)."""
    if replica is None:
        with engine.connect() as conn:
            return _read_block(conn, reading, after, BLOCK, scan=scan)
    try:
        with replica.engine.connect() as conn:
            return _read_block(conn, reading, after, BLOCK, scan=scan, on_replica=True)
    except DBAPIError as exc:
        replica.mark_down(exc)
        raise


_read_ahead = _ReadAhead()


def _write(
    db: Session,
    run: ChurnRun,
    users: _Range,
    calibration: model.Calibration,
    cutoffs: tuple[float, float],
    trained: boosting.Booster | None = None,
) -> int:
    conn = db.connection()
    columns = users.columns
    predicted = (
        trained.predict_all(columns, cutoffs)
        if trained is not None
        else model.predict_all(columns, calibration, cutoffs)
    )
    ids = users.ids
    org, run_id = run.organization_id, run.id
    json_text = bulk.json_text
    scores = [
        (
            org,
            run_id,
            user_id,
            round(probability, 4),
            level,
            json_text(reasons) if reasons else "[]",
        )
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
    # The row keeps the probability to 3 decimals (the list sorts by it) and the level:
    # only the rows where either moved are written. A level that moved is a change of
    # the user (updated_at, a webhook); a probability that moved within its level is
    # the score's own bookkeeping, written alone (its index only, not the level's).
    moved: list[tuple[int, Any, str]] = []
    level_moved: list[tuple[int, str, float]] = []
    probability_moved: list[tuple[int, float]] = []
    for user_id, (probability_was, level_was), level, probability in zip(
        ids, users.before, predicted.levels, predicted.probabilities, strict=True
    ):
        kept = round(probability, 3)
        if level_was != level:
            moved.append((user_id, level_was, level))
            level_moved.append((user_id, level, kept))
        elif probability_was != kept:
            probability_moved.append((user_id, kept))
    now = bulk.sql_time(_dialect(db))(utcnow())
    bulk.update_rows(
        conn,
        "users",
        ("churn_level", "churn_probability"),
        level_moved,
        same={"updated_at": now},
    )
    bulk.update_rows(conn, "users", ("churn_probability",), probability_moved)
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
