"""How long a sign-in session lives. Pure: the numbers come from the organization's settings.

A session ends at the first of: its cap (`sessions.expires_at`, fixed when it opened: the
lifetime of the time, or an impersonation's hour), its lifetime counted from the sign-in
with the organization's settings of now, and its idle limit counted from its last use. So
a shorter limit applies to open sessions at once, a longer idle limit too, and a longer
lifetime to the sessions opened after it.

"Keep me signed in" gives a session longer limits and a cookie that outlives the browser.
Whether a session is kept is written in its token (`KEPT_TOKEN_PREFIX`), which the database
holds only hashed: the client cannot turn a session into a kept one, and a request knows
the kind of its session without another column.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

# A URL-safe token has no dot, so the prefix cannot be the start of an ordinary token.
KEPT_TOKEN_PREFIX = "k."  # noqa: S105 - a marker, not a secret


@dataclass(frozen=True)
class MinutesSetting:
    """An organization setting counted in whole minutes, with its default and bounds."""

    name: str
    label: str
    default: int
    low: int
    high: int

    def problem(self, value: object) -> str | None:
        """Why VALUE cannot be stored, in words naming the value; None when it can."""
        if isinstance(value, bool) or not isinstance(value, int):
            return f"'{value}' is not a whole number of minutes"
        if not self.low <= value <= self.high:
            return f"{value} is not between {self.low} and {self.high} minutes"
        return None


DAY = 24 * 60
# Defaults: those of Keycloak's SSO sessions (30 minutes idle, 10 hours at most).
SESSION_IDLE = MinutesSetting(
    "session_idle_minutes", "Sessions end after this long unused", 30, 1, DAY
)
SESSION_MAX = MinutesSetting(
    "session_max_minutes", "Sessions end this long after signing in", 10 * 60, 5, 7 * DAY
)
KEPT_IDLE = MinutesSetting(
    "keep_signed_in_idle_minutes", "Kept sessions end after this long unused", 14 * DAY, 5, 90 * DAY
)
KEPT_MAX = MinutesSetting(
    "keep_signed_in_max_minutes",
    "Kept sessions end this long after signing in",
    30 * DAY,
    5,
    365 * DAY,
)
MINUTES_SETTINGS = (SESSION_IDLE, SESSION_MAX, KEPT_IDLE, KEPT_MAX)
# Which idle limit may not exceed which lifetime.
IDLE_WITHIN = ((SESSION_IDLE, SESSION_MAX), (KEPT_IDLE, KEPT_MAX))


@dataclass(frozen=True)
class SessionLimits:
    """How long a session may go unused, and how long it may last at all."""

    idle: timedelta
    lifetime: timedelta
    kept: bool = False


def is_kept_token(token: str) -> bool:
    """Whether TOKEN is that of a session opened with "keep me signed in"."""
    return token.startswith(KEPT_TOKEN_PREFIX)


def ends_at(
    *, created_at: datetime, last_seen_at: datetime, expires_at: datetime, limits: SessionLimits
) -> datetime:
    """When a session ends unless it is used again before."""
    return min(expires_at, created_at + limits.lifetime, last_seen_at + limits.idle)


def order_problem(values: dict[str, int]) -> tuple[str, str] | None:
    """(field, problem) when an idle limit in VALUES (every setting's name -> minutes) is
    longer than the lifetime it belongs to; None when they are in order."""
    for idle, lifetime in IDLE_WITHIN:
        if values[idle.name] > values[lifetime.name]:
            return idle.name, (
                f"{values[idle.name]} minutes unused is longer than the "
                f"{values[lifetime.name]} minutes a session may last"
            )
    return None
