"""What a user's past says about their future, as of a moment: pure functions.

Only what happened strictly before AS_OF counts. The database adds up the events (see
scoring.py) into one row per user, which `FeatureColumns.of_rows` turns into arrays, a
column per feature; `Activity.of_events` and `features` do the same for one user in
Python, for tests and small cases.
"""

from __future__ import annotations

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
