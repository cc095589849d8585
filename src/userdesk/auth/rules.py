"""Pure rules of signing in: when repeated failures lock a client out of an account, and
for how long."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

LOCK_AFTER = 5  # failed sign-ins in a row from one client before it is locked out a while
# Failed sign-ins from all untrusted clients (no device cookie) together before they are all
# locked out of the account: guessing from many addresses at once stays slow, and the
# owner's own browser (device cookie) still gets in.
UNTRUSTED_LOCK_AFTER = 20
FIRST_LOCK = timedelta(minutes=1)  # then doubled at each further failure...
LONGEST_LOCK = timedelta(hours=1)  # ...up to this
FAILURES_KEPT = timedelta(days=1)  # failures older than this are forgotten


def lock_length(failures: int, *, after: int = LOCK_AFTER) -> timedelta:
    """How long FAILURES failed sign-ins in a row lock the account (zero below the
    threshold AFTER): 1, 2, 4 ... minutes, at most LONGEST_LOCK."""
    if failures < after:
        return timedelta(0)
    doublings = min(failures - after, 12)
    longer: timedelta = FIRST_LOCK * (1 << doublings)
    return min(longer, LONGEST_LOCK)


def locked_until(failures: Sequence[datetime], *, after: int = LOCK_AFTER) -> datetime | None:
    """Until when an account whose failed sign-ins (oldest first) are FAILURES is locked,
    or None when it is not locked at all (fewer than AFTER)."""
    if len(failures) < after:
        return None
    return failures[-1] + lock_length(len(failures), after=after)
