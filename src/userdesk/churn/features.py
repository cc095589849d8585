"""What a user's past says about their future, as of a moment: pure functions.

Only what happened strictly before AS_OF counts. The database adds up the events (see
scoring.py) into one row per user, which `FeatureColumns.of_rows` turns into arrays, a
column per feature; `Activity.of_events` and `features` do the same for one user in
Python, for tests and small cases.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]

DAY = timedelta(days=1)
WEEKS = 12  # the weeks in which "active weeks" are counted


@dataclass(frozen=True)
class Activity:
    """A user's events before the moment: counts over trailing windows and last times."""

    last_7: int
    last_28: int
    previous_28: int  # the 28 days before the last 28
    last_90: int
    active_weeks: int  # of the last WEEKS weeks, those with at least one event
    last_event_at: datetime | None
    last_login_at: datetime | None

    @classmethod
    def of_events(cls, events: Iterable[tuple[str, datetime]], as_of: datetime) -> Activity:
        """From (type, when) pairs; those at or after AS_OF are ignored."""
        past = [(kind, when) for kind, when in events if when < as_of]
        ages = [(as_of - when) / DAY for _, when in past]
        weeks = {int(age // 7) for age in ages if age < 7 * WEEKS}
        return cls(
            last_7=sum(age <= 7 for age in ages),
            last_28=sum(age <= 28 for age in ages),
            previous_28=sum(28 < age <= 56 for age in ages),
            last_90=sum(age <= 90 for age in ages),
            active_weeks=len(weeks),
            last_event_at=max((when for _, when in past), default=None),
            last_login_at=max((when for kind, when in past if kind == "login"), default=None),
        )


@dataclass(frozen=True)
class Features:
    days_since_event: float | None  # None: no event ever
    days_since_login: float | None
    events_7: int
    events_28: int
    events_90: int
    trend: float  # last 28 days against the 28 before: -1 (stopped) .. +1 (doubled or more)
    active_week_share: float  # 0..1 over the last WEEKS weeks
    tenure_days: float
    verified: bool
    validated: bool
    accepted: bool  # signed up or accepted the invitation (not Not Activated)
    status: str


@dataclass(frozen=True)
class FeatureColumns:
    """The features of many users, a column each (NaN: no such event ever)."""

    days_since_event: Floats
    days_since_login: Floats
    events_7: Floats
    events_28: Floats
    events_90: Floats
    trend: Floats
    active_week_share: Floats
    tenure_days: Floats
    verified: Floats  # 1.0 or 0.0, and so on
    validated: Floats
    accepted: Floats
    types: TypeColumns | None = None  # per event type (None: not read)

    # The order of the columns in a row of scoring's statement, after the user's id.
    ROW = (
        "tenure_days",
        "verified",
        "validated",
        "accepted",
        "last_7",
        "last_28",
        "previous_28",
        "last_90",
        "active_weeks",
        "days_since_event",
        "days_since_login",
    )

    @classmethod
    def of_rows(cls, rows: Sequence[Sequence[Any]]) -> FeatureColumns:
        """From rows laid out as ROW (counts of users without events may be None)."""
        table = np.array(rows, dtype=np.float64).reshape(len(rows), len(cls.ROW))
        c = dict(zip(cls.ROW, table.T, strict=True))
        counts = {name: np.nan_to_num(c[name]) for name in ("last_7", "last_28", "previous_28")}
        return cls(
            days_since_event=c["days_since_event"],
            days_since_login=c["days_since_login"],
            events_7=counts["last_7"],
            events_28=counts["last_28"],
            events_90=np.nan_to_num(c["last_90"]),
            trend=trend(counts["last_28"], counts["previous_28"]),
            active_week_share=np.nan_to_num(c["active_weeks"]) / WEEKS,
            tenure_days=np.fmax(c["tenure_days"], 0.0),
            verified=c["verified"],
            validated=c["validated"],
            accepted=c["accepted"],
        )

    def __len__(self) -> int:
        return len(self.tenure_days)

    def with_types(self, types: TypeColumns) -> FeatureColumns:
        return dataclasses.replace(self, types=types)

    def row(self, i: int, status: str = "") -> Features:
        """The features of the I-th user."""

        def days(values: Floats) -> float | None:
            value = float(values[i])
            return None if np.isnan(value) else value

        return Features(
            days_since_event=days(self.days_since_event),
            days_since_login=days(self.days_since_login),
            events_7=int(self.events_7[i]),
            events_28=int(self.events_28[i]),
            events_90=int(self.events_90[i]),
            trend=float(self.trend[i]),
            active_week_share=float(self.active_week_share[i]),
            tenure_days=float(self.tenure_days[i]),
            verified=bool(self.verified[i]),
            validated=bool(self.validated[i]),
            accepted=bool(self.accepted[i]),
            status=status,
        )


def features(
    activity: Activity,
    *,
    as_of: datetime,
    created_at: datetime,
    verified: bool,
    validated: bool,
    status: str,
) -> Features:
    def days(moment: datetime | None) -> float | None:
        return None if moment is None else (as_of - moment) / DAY

    return Features(
        days_since_event=days(activity.last_event_at),
        days_since_login=days(activity.last_login_at),
        events_7=activity.last_7,
        events_28=activity.last_28,
        events_90=activity.last_90,
        trend=float(trend(activity.last_28, activity.previous_28)),
        active_week_share=activity.active_weeks / WEEKS,
        tenure_days=max(0.0, (as_of - created_at) / DAY),
        verified=verified,
        validated=validated,
        accepted=status != "pending",
        status=status,
    )


def trend(recent: Any, before: Any) -> Any:
    """The change from BEFORE to RECENT, from -1 (all gone) to +1 (doubled or more); of
    numbers or of arrays."""
    recent, before = np.asarray(recent, dtype=np.float64), np.asarray(before, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        change = np.clip((recent - before) / before, -1.0, 1.0)
    return np.where(before == 0, np.sign(recent), change)


# What each event type the organization sends says, a column each (see TypeColumns).
PER_TYPE = ("last_7", "last_28", "trend", "days_since", "active_week_share")


@dataclass(frozen=True)
class TypeColumns:
    """Per event type, of many users: a row per user, a column per type (in NAMES).

    Counts are weighted: an event that carries a number (`count`, `quantity`, or the
    property the organization named) counts as that many. Only the last WEEKS weeks are
    read, so DAYS_SINCE is NaN for a type not seen in them."""

    names: tuple[str, ...]
    last_7: Floats
    last_28: Floats
    previous_28: Floats
    days_since: Floats
    active_weeks: Floats

    @classmethod
    def of_rows(
        cls, user_ids: Sequence[int], rows: Iterable[Sequence[Any]], names: Sequence[str]
    ) -> TypeColumns:
        """From rows of (user id, type, last_7, last_28, previous_28, days_since,
        active_weeks), for the users USER_IDS in that order (types not in NAMES ignored)."""
        ids = np.asarray(user_ids, dtype=np.int64)
        shape = (len(ids), len(names))
        counts = [np.zeros(shape) for _ in range(4)]
        days_since = np.full(shape, np.nan)
        found = list(rows)
        if found and len(ids) and names:
            column = {name: k for k, name in enumerate(names)}
            kinds = np.array([column.get(row[1], -1) for row in found], dtype=np.int64)
            users = np.array([row[0] for row in found], dtype=np.int64)
            values = np.array([row[2:7] for row in found], dtype=np.float64)  # None: NaN
            order = np.argsort(ids, kind="stable")
            where = np.clip(np.searchsorted(ids, users, sorter=order), 0, len(ids) - 1)
            at = order[where]
            keep = (ids[at] == users) & (kinds >= 0)
            i, k, values = at[keep], kinds[keep], values[keep]
            for table, j in zip(counts, (0, 1, 2, 4), strict=True):
                table[i, k] = np.nan_to_num(values[:, j])
            days_since[i, k] = values[:, 3]
        last_7, last_28, previous_28, active_weeks = counts
        return cls(tuple(names), last_7, last_28, previous_28, days_since, active_weeks)

    @classmethod
    def none(cls, users: int) -> TypeColumns:
        return cls.of_rows(range(users), [], [])

    def table(self, names: Sequence[str]) -> Floats:
        """The PER_TYPE columns of each type in NAMES, in that order (a type these
        columns lack: never seen), a row per user."""
        n = len(self.last_7)
        parts: list[Floats] = []
        for name in names:
            if name in self.names:
                k = self.names.index(name)
                recent, before = self.last_28[:, k], self.previous_28[:, k]
                parts += [
                    self.last_7[:, k],
                    recent,
                    trend(recent, before),
                    self.days_since[:, k],
                    self.active_weeks[:, k] / WEEKS,
                ]
            else:
                parts += [np.zeros(n), np.zeros(n), np.zeros(n), np.full(n, np.nan), np.zeros(n)]
        if not parts:
            return np.zeros((n, 0))
        return np.column_stack(parts).astype(np.float64)
