"""Pure rules of signing in: when repeated failures lock an account, and for how long."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

LOCK_AFTER = 5  # failed sign-ins in a row before the account is locked for a while
FIRST_LOCK = timedelta(minutes=1)  # then doubled at each further failure...
LONGEST_LOCK = timedelta(hours=1)  # ...up to this
FAILURES_KEPT = timedelta(days=1)  # failures older than this are forgotten


def lock_length(failures: int) -> timedelta:
    """How long FAILURES failed sign-ins in a row lock the account (zero below the
    threshold): 1, 2, 4 ... minutes, at most LONGEST_LOCK."""
    if failures < LOCK_AFTER:
        return timedelta(0)
    doublings = min(failures - LOCK_AFTER, 12)
    longer: timedelta = FIRST_LOCK * (1 << doublings)
    return min(longer, LONGEST_LOCK)


def locked_until(failures: Sequence[datetime]) -> datetime | None:
    """Until when an account whose failed sign-ins (oldest first) are FAILURES is locked,
    or None when it is not locked at all."""
    if len(failures) < LOCK_AFTER:
        return None
    return failures[-1] + lock_length(len(failures))
