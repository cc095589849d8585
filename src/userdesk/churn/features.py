"""What a user's past says about their future, as of a moment: pure functions.

Only what happened strictly before AS_OF counts. The database adds up the events (see
scoring.py); `Activity.of_events` does the same in Python, for tests and small cases.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

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
        trend=trend(activity.last_28, activity.previous_28),
        active_week_share=activity.active_weeks / WEEKS,
        tenure_days=max(0.0, (as_of - created_at) / DAY),
        verified=verified,
        validated=validated,
        accepted=status != "pending",
        status=status,
    )


def trend(recent: int, before: int) -> float:
    """The change from BEFORE to RECENT, from -1 (all gone) to +1 (doubled or more)."""
    if before == 0:
        return 1.0 if recent else 0.0
    return max(-1.0, min(1.0, (recent - before) / before))


def log_count(count: int) -> float:
    return math.log1p(count)
