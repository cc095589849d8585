"""What a user's past says about their future, as of a moment: pure functions.

Only what happened strictly before AS_OF counts. The database reads a row per user and
a row per recent event, placed in its windows (see scoring.py), which
`FeatureColumns.of_rows` adds up into arrays, a column per feature (and `TypeColumns`, per
type); `Activity.of_events` and `features` do the same for one user in Python, for tests
and small cases.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import chain
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

    # The order of the columns in a row of scoring's statement on users, after the user's
    # id (and before any more): the days since the last event, the last login event, and
    # the last sign-in the client sent (users.last_login_at); NaN: none.
    ROW = (
        "tenure_days",
        "verified",
        "validated",
        "accepted",
        "days_since_event",
        "days_since_login_event",
        "days_since_login_sent",
    )

    @classmethod
    def of_rows(
        cls,
        users: Sequence[Sequence[Any]],
        events: Iterable[Sequence[Any]],
        names: Sequence[str] = (),
        weighted: Collection[str] = (),
    ) -> FeatureColumns:
        """From rows of scoring's two statements: USERS as (id, *ROW, ...), EVENTS as
        EVENT_ROW, a row per event (those of users not in USERS ignored), their types
        placed in NAMES; with the features of each event type in NAMES (TypeColumns; the
        counts of those in WEIGHTED weighted)."""
        n, width = len(users), len(cls.ROW)
        ids = np.fromiter((row[0] for row in users), dtype=np.int64, count=n)
        table = np.array([row[1 : 1 + width] for row in users], dtype=np.float64)
        c = dict(zip(cls.ROW, table.reshape(n, width).T, strict=True))
        sums = EventSums.of_rows(ids, events)
        per_user = sums.per_user(n)
        return cls(
            days_since_event=c["days_since_event"],
            days_since_login=np.fmin(c["days_since_login_event"], c["days_since_login_sent"]),
            events_7=per_user["last_7"],
            events_28=per_user["last_28"],
            events_90=per_user["last_90"],
            trend=trend(per_user["last_28"], per_user["previous_28"]),
            active_week_share=per_user["active_weeks"] / WEEKS,
            tenure_days=np.fmax(c["tenure_days"], 0.0),
            verified=c["verified"],
            validated=c["validated"],
            accepted=c["accepted"],
            types=sums.per_type(n, names, weighted),
        )

    def __len__(self) -> int:
        return len(self.tenure_days)

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


# The order of the columns in a row of scoring's statement on events: a row per event of
# the 90 days before the moment. TYPE: the place of the event's type among the types
# whose features are read (-1: another). DAYS: its age. WINDOWS: the bits of the windows
# it falls in (the flags below). WEIGHT: what it counts for, if its type is weighted (0:
# it is not; never NULL, so that the rows go into numpy as one flat run of numbers).
# IN_WEEKS: after the start of the last WEEKS weeks; AT_WEEKS_START: at that very moment,
# which counts for the type's active weeks, not for the user's (both as they were always
# counted).
EVENT_ROW = ("user_id", "type", "days", "windows", "weight")
LAST_7, LAST_28, PREVIOUS_28, IN_WEEKS, AT_WEEKS_START = 1, 2, 4, 8, 16
EXACTLY = 16  # in a type's weeks as bits: bit w, an event in week w; EXACTLY + w, at its start
LOGIN = "login"  # the event type of a sign-in


@dataclass(frozen=True)
class EventSums:
    """Rows of scoring's statement on events, as arrays: for each row, the index of its
    user (in the users scored), its type (in the types read; -1: another), its age in days,
    its windows and its weight (0: not weighted)."""

    user: npt.NDArray[np.int64]
    kind: npt.NDArray[np.int64]
    days: Floats
    windows: npt.NDArray[np.int64]
    weight: Floats

    @classmethod
    def of_rows(cls, ids: npt.NDArray[np.int64], rows: Iterable[Sequence[Any]]) -> EventSums:
        """From rows laid out as EVENT_ROW, for the users IDS in that order (the rows of
        other users left out)."""
        found = rows if isinstance(rows, Sequence) else list(rows)
        width = len(EVENT_ROW)
        # numbers only: read flat, at half the cost of np.array's look at each row
        table = np.fromiter(
            chain.from_iterable(found), dtype=np.float64, count=len(found) * width
        ).reshape(-1, width)
        users = table[:, 0].astype(np.int64)
        at = np.full(len(found), -1, dtype=np.int64)
        if len(ids) and len(found):
            order = np.argsort(ids, kind="stable")
            where = np.clip(np.searchsorted(ids, users, sorter=order), 0, len(ids) - 1)
            at = np.where(ids[order[where]] == users, order[where], -1)
        keep = at >= 0
        kept = table[keep]
        return cls(
            at[keep],
            kept[:, 1].astype(np.int64),
            kept[:, 2],
            kept[:, 3].astype(np.int64),
            kept[:, 4],
        )

    def _in(self, window: int) -> npt.NDArray[np.bool_]:
        found: npt.NDArray[np.bool_] = (self.windows & window) != 0
        return found

    def _week_bits(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """Each row's week as a bit (0: not in the last WEEKS weeks), and the same at the
        weeks' very start (bit EXACTLY + w)."""
        week = np.left_shift(1, np.floor(self.days / 7).astype(np.int64))
        return (
            np.where(self._in(IN_WEEKS), week, 0),
            np.where(self._in(AT_WEEKS_START), week << EXACTLY, 0),
        )

    def per_user(self, users: int) -> dict[str, Floats]:
        """The user's counts (last_7, last_28, previous_28, last_90) and active_weeks, of
        every type."""

        def count(rows: npt.NDArray[np.bool_] | None) -> Floats:
            return np.asarray(np.bincount(self.user, weights=rows, minlength=users), np.float64)

        found = {
            "last_7": count(self._in(LAST_7)),
            "last_28": count(self._in(LAST_28)),
            "previous_28": count(self._in(PREVIOUS_28)),
            "last_90": count(None),  # all those read
        }
        weeks = np.zeros(users, dtype=np.int64)
        np.bitwise_or.at(weeks, self.user, self._week_bits()[0])
        found["active_weeks"] = np.bitwise_count(weeks).astype(np.float64)
        return found

    def per_type(self, users: int, names: Sequence[str], weighted: Collection[str]) -> TypeColumns:
        """The TypeColumns of the types NAMES, those read in that order (the counts of those
        in WEIGHTED weighted)."""
        shape = (users, len(names))
        counts = {window: np.zeros(shape) for window in (LAST_7, LAST_28, PREVIOUS_28)}
        days_since, active_weeks = np.full(shape, np.nan), np.zeros(shape)
        in_weeks, at_start = self._week_bits()
        for k, name in enumerate(names):
            rows = self.kind == k
            i = self.user[rows]
            weight = self.weight[rows] if name in weighted else 1.0
            for window, found in counts.items():
                found[:, k] = np.bincount(
                    i, weights=weight * self._in(window)[rows], minlength=users
                )
            recent = rows & ((in_weeks | at_start) != 0)  # in the last WEEKS weeks
            np.fmin.at(days_since[:, k], self.user[recent], self.days[recent])
            weeks = np.zeros(users, dtype=np.int64)
            np.bitwise_or.at(weeks, i, in_weeks[rows] | at_start[rows])
            active_weeks[:, k] = np.bitwise_count(
                (weeks & ((1 << EXACTLY) - 1)) | (weeks >> EXACTLY)
            )
        return TypeColumns(
            tuple(names),
            counts[LAST_7],
            counts[LAST_28],
            counts[PREVIOUS_28],
            days_since,
            active_weeks,
        )
