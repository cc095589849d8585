"""The gradient boosting model learns from the organization's past snapshots: chosen when
there is history, better on a later snapshot it never saw, absent with little history,
and its contributions give reasons in words."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pytest
from sqlalchemy import insert, select, text
from sqlalchemy.orm import Session

from tests.churn.test_scoring import run_scoring
from userdesk.activity.models import ActivityEvent
from userdesk.churn import boosting, metrics, model, scoring
from userdesk.churn.models import ChurnScore
from userdesk.db.base import utcnow
from userdesk.organizations.models import Organization
from userdesk.users.models import User

DAY = timedelta(days=1)


def synthetic(db: Session, org: Organization, users: int, seed: int = 4) -> datetime:
    """USERS who joined 200 days ago, each active at their own rate until they stop for
    good; users never validated stop ten times as often (a fact the transparent model
    does not weigh). Returns now."""
    rng = np.random.default_rng(seed)
    now = utcnow()
    start = now - 200 * DAY
    people = [
        User(
            organization_id=org.id,
            email=f"s{seed}-{n}@example.com",
            email_normalized=f"s{seed}-{n}@example.com",
            status="active",
            email_verified_at=start,
            validated_at=start if n % 2 else None,
            created_at=start,
        )
        for n in range(users)
    ]
    db.add_all(people)
    db.flush()
    events: list[dict[str, Any]] = []
    for n, person in enumerate(people):
        rate = rng.gamma(2.0, 0.12)  # events a day
        hazard = 0.003 if n % 2 else 0.03  # of stopping, a day
        stop = min(200.0, rng.exponential(1 / hazard))
        ages = np.sort(rng.uniform(0, stop, size=rng.poisson(rate * stop)))
        events += [
            {
                "organization_id": org.id,
                "user_id": person.id,
                "type": "login" if k % 3 == 0 else "page.viewed",
                "occurred_at": start + float(age) * DAY,
                "properties": {},
            }
            for k, age in enumerate(ages)
        ]
    db.execute(insert(ActivityEvent), events)
    db.flush()
    if db.get_bind().dialect.name == "postgresql":
        # What autovacuum does within a minute of such inserts: without statistics the
        # planner takes the tables for empty and loops over every user's events.
        db.execute(text("ANALYZE users, activity_events"))
    return now


def test_with_history_boosting_is_chosen_and_better_on_a_later_snapshot(
    db: Session, org: Organization
) -> None:
    now = synthetic(db, org, 1_000)
    as_of = now - 30 * DAY  # trained as of a month ago: the last month is its future
    history = boosting.history(db, org.id, as_of)
    assert all(s.at + 30 * DAY <= as_of for s in history)  # no outcome after as_of
    trained = boosting.train(history)
    assert trained is not None
    assert trained.summary["model"] == boosting.NAME
    later = boosting.snapshot(db, org.id, as_of)  # outcomes in the month after as_of
    latest = history[0]
    calibration = model.fit_calibration(
        model.scores(latest.columns).tolist(), [bool(v) for v in latest.churned]
    )
    theirs = metrics.log_loss(later.churned, calibration.probabilities(model.scores(later.columns)))
    ours = metrics.log_loss(later.churned, trained.probabilities(later.columns))
    assert ours < theirs - 0.01, (ours, theirs)


def test_with_little_history_the_transparent_model_stays(db: Session, org: Organization) -> None:
    now = synthetic(db, org, 60, seed=5)
    assert not boosting.enough(boosting.history(db, org.id, now))
    assert boosting.train(boosting.history(db, org.id, now)) is None


def test_contributions_give_reasons_in_words(db: Session, org: Organization) -> None:
    now = synthetic(db, org, 1_000, seed=6)
    trained = boosting.train(boosting.history(db, org.id, now), require_better=False)
    assert trained is not None
    today = boosting.snapshot(db, org.id, now)
    table = boosting.matrix(today.columns, trained.types)
    pushes = trained.contributions(table)
    assert pushes.shape == (len(table), len(trained.terms))
    # a user at the medians has no push from any feature
    at_median = trained.contributions(trained.medians[np.newaxis])
    assert np.allclose(at_median, 0.0)
    predicted = trained.predict_all(today.columns, (0.2, 0.5))
    high = [i for i, level in enumerate(predicted.levels) if level == "high"]
    assert high
    said = [reason for i in high for reason in predicted.reasons[i]]
    assert any(r.startswith(("No sign-in for", "No activity for", "Only ")) for r in said), said
    assert all(not predicted.reasons[i] for i, lv in enumerate(predicted.levels) if lv == "low")
    assert predicted.probabilities == pytest.approx(trained.probabilities(today.columns).tolist())


def test_scoring_uses_boosting_when_trained_and_records_it(db: Session, org: Organization) -> None:
    synthetic(db, org, 1_000, seed=9)
    run = run_scoring(db, org)
    assert run.model == boosting.NAME
    summary = run.calibration["boosting"]
    assert summary["log_loss"] < summary["transparent_log_loss"]
    scores = db.scalars(select(ChurnScore).where(ChurnScore.run_id == run.id)).all()
    assert len(scores) == 1_000
    high = [s for s in scores if s.level == "high"]
    assert high
    assert all(s.reasons for s in high)
    assert {
        u.churn_level for u in db.scalars(select(User).where(User.organization_id == org.id))
    } >= {"high"}


def test_scoring_keeps_the_transparent_model_with_little_history(
    db: Session, org: Organization
) -> None:
    synthetic(db, org, 60, seed=10)
    run = run_scoring(db, org)
    assert run.model == scoring.MODEL
    assert "boosting" not in run.calibration
