"""Churn features are computed from strictly earlier data; the score, its reasons and its
calibration behave."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

from userdesk.churn import model
from userdesk.churn.features import Activity, features, trend

NOW = datetime(2026, 11, 1, tzinfo=UTC)
DAY = timedelta(days=1)


def test_only_events_before_the_moment_count() -> None:
    events = [("login", NOW - 2 * DAY), ("page.viewed", NOW - 40 * DAY), ("login", NOW + DAY)]
    activity = Activity.of_events(events, NOW)
    assert (activity.last_7, activity.last_28, activity.previous_28, activity.last_90) == (
        1,
        1,
        1,
        2,
    )
    assert activity.last_login_at == NOW - 2 * DAY
    assert activity.last_event_at == NOW - 2 * DAY
    assert activity.active_weeks == 2
    assert Activity.of_events(events, NOW - 50 * DAY).last_event_at is None


def test_trend_is_bounded_and_says_which_way() -> None:
    assert trend(3, 10) == -0.7
    assert trend(0, 5) == -1.0
    assert trend(30, 5) == 1.0
    assert trend(0, 0) == 0.0


def _features(events: list[tuple[str, datetime]], *, status: str = "active", verified=True):  # type: ignore[no-untyped-def]
    return features(
        Activity.of_events(events, NOW),
        as_of=NOW,
        created_at=NOW - 200 * DAY,
        verified=verified,
        validated=True,
        status=status,
    )


def steady() -> list[tuple[str, datetime]]:
    return [("login", NOW - (d + 0.5) * DAY) for d in range(0, 84, 2)]


def test_a_quiet_user_is_at_more_risk_than_a_steady_one_and_is_told_why() -> None:
    quiet = _features([("login", NOW - (d + 24) * DAY) for d in range(0, 60, 3)])
    busy = _features(steady())
    assert model.score(quiet) > model.score(busy)
    assert model.reasons(quiet)[0] == "No sign-in for 24 days"
    assert model.reasons(busy) == []


def test_falling_activity_and_an_unaccepted_invitation_are_named() -> None:
    falling = _features(
        [("page.viewed", NOW - (d + 29) * DAY) for d in range(20)]
        + [("login", NOW - d * DAY - DAY / 2) for d in range(0, 28, 4)]
    )
    assert "Activity down 65% vs the previous month" in model.reasons(falling, limit=6)
    invited = _features([], status="pending", verified=False)
    assert "Never accepted the invitation" in model.reasons(invited, limit=6)


def test_levels_follow_the_cutoffs() -> None:
    assert [model.level(p, (0.3, 0.6)) for p in (0.1, 0.3, 0.59, 0.6)] == [
        "low",
        "medium",
        "medium",
        "high",
    ]


def test_calibration_recovers_the_scaling_that_made_the_outcomes() -> None:
    rng = random.Random(7)
    scores = [rng.uniform(-4, 4) for _ in range(4000)]
    outcomes = [rng.random() < model.sigmoid(0.5 * s - 1.0) for s in scores]
    fitted = model.fit_calibration(scores, outcomes)
    assert math.isclose(fitted.a, 0.5, abs_tol=0.08)
    assert math.isclose(fitted.b, -1.0, abs_tol=0.12)
    assert model.fit_calibration(scores[:10], outcomes[:10]) == model.Calibration()
