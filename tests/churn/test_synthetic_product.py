"""A host product that backfills its accounts and a year of events through the public API
gets scores at a past date, a model that beats the logistic baseline out of time on its
own event types, reasons that name those types, and either meaning of churn."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests import factories
from tests.churn import synthetic
from userdesk.access.rules import system_actor
from userdesk.activity.models import ActivityEvent
from userdesk.churn import boosting, evaluation, scoring
from userdesk.churn import definition as churn_definition
from userdesk.churn.models import ChurnRun, ChurnScore
from userdesk.db.base import utcnow
from userdesk.jobs import service as jobs
from userdesk.jobs.models import Job
from userdesk.organizations.models import Organization

DAY = timedelta(days=1)
ACCOUNTS = 2_500
CANCELLATION = churn_definition.checked(kind="event", event_type=synthetic.CANCELLED)


def _run(db: Session, job_id: str) -> tuple[Job, ChurnRun]:
    db.expire_all()  # as a new unit of work would: what the API changed is read again
    job = db.get_one(Job, int(job_id))
    while not jobs.step(db, job=job, base_url="http://testserver"):
        pass
    assert job.status == "done", job.problems
    return job, db.get_one(ChurnRun, job.params["run_id"])


def test_a_backfilled_product_is_scored_at_a_past_date_and_beats_the_baseline(
    client: TestClient, db: Session, org: Organization
) -> None:
    key = factories.make_api_key(db, org)
    headers = {"Authorization": f"Bearer {key}"}
    now = utcnow()
    product = synthetic.send(client, key, ACCOUNTS, now)
    assert product.cancelled > ACCOUNTS // 4

    # The organization says churn is a cancellation; the API says it in words.
    answer = client.put(
        "/api/v1/churn/definition",
        json={"kind": "event", "event_type": synthetic.CANCELLED, "days": 30},
        headers=headers,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["predicts"].startswith(
        f"The chance that {synthetic.CANCELLED} happens in the next 30 days"
    )

    # Scoring 60 days back works: the users who existed then are scored.
    as_of = now - 60 * DAY
    answer = client.post("/api/v1/churn/runs", json={"as_of": as_of.isoformat()}, headers=headers)
    assert answer.status_code == 202, answer.text
    assert answer.json()["problems"] == []
    _job, run = _run(db, answer.json()["id"])
    assert run.users > ACCOUNTS * 0.9
    assert run.calibration["predicts"].startswith(f"The chance that {synthetic.CANCELLED}")
    assert run.model == boosting.NAME, run.calibration["choice"]
    types = [t["name"] for t in run.calibration["event_types"]]
    assert {"login", "post.created", "comment.added"} <= set(types)
    assert next(t for t in run.calibration["event_types"] if t["name"] == "post.created")[
        "weighted"
    ]
    scores = db.scalars(select(ChurnScore).where(ChurnScore.run_id == run.id)).all()
    said = [r for s in scores if s.level != "low" for r in s.reasons]
    assert said
    named = [r for r in said if "post.created" in r or "comment.added" in r]
    assert len(named) > len(said) / 4, said[:20]

    # The backtest: trained only before the snapshot; the model beats the baseline.
    found = evaluation.organization(db, org.id, now - 30 * DAY, 30 * DAY, churn=CANCELLATION)
    assert not found.problems, found.problems
    assert found.boosting is not None
    assert found.baseline is not None
    assert found.boosting["log_loss"] < found.baseline["log_loss"]
    assert found.boosting["auc"] > found.baseline["auc"] + 0.02
    assert found.in_use == boosting.NAME, found.verdict

    # The same history, churn as inactivity: it runs, and who cancelled went quiet.
    quiet = evaluation.organization(db, org.id, now - 30 * DAY, 30 * DAY)
    assert quiet.boosting is not None
    assert quiet.baseline is not None
    assert quiet.boosting["auc"] > 0.7
    assert quiet.predicts.startswith("The chance of no sign-in and no event")


def test_an_event_churn_labels_only_the_users_in_scope(db: Session, org: Organization) -> None:
    """Labels: 1 when the event happens in the horizon; users who already cancelled, or
    were not active in the scope's days, are not labelled."""
    now = utcnow()
    at = now - 40 * DAY

    def person(*events: tuple[str, float]) -> int:
        user = factories.make_user(db, org)
        user.created_at = now - 200 * DAY
        for kind, days_before_now in events:
            db.add(
                ActivityEvent(
                    organization_id=org.id,
                    user_id=user.id,
                    type=kind,
                    occurred_at=now - days_before_now * DAY,
                    properties={},
                )
            )
        db.flush()
        return user.id

    person(("login", 45), (synthetic.CANCELLED, 30))  # cancels in the horizon
    person(("login", 45), ("login", 20))  # stays
    person(("login", 45), (synthetic.CANCELLED, 50))  # had cancelled before
    person(("login", 100))  # dormant: not active in the 30 days before
    _, churned = scoring.labelled(db, org.id, at, sample=100, horizon=30 * DAY, churn=CANCELLATION)
    assert len(churned) == 2  # neither the one who cancelled before nor the dormant one
    assert sorted(churned.tolist()) == [0.0, 1.0]
    _columns, quiet = scoring.labelled(db, org.id, at, sample=100, horizon=30 * DAY)
    assert len(quiet) == 4  # inactivity labels everyone, as it always did
    assert np.isclose(quiet.sum(), 2)  # the two with no event in the horizon


def test_scoring_before_any_user_existed_says_why_and_what_to_send(
    client: TestClient, db: Session, org: Organization
) -> None:
    key = factories.make_api_key(db, org)
    factories.make_user(db, org)
    answer = client.post(
        "/api/v1/churn/runs",
        json={"as_of": (utcnow() - 400 * DAY).isoformat()},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert answer.status_code == 202
    problems = [p["problem"] for p in answer.json()["problems"]]
    assert problems
    assert problems[0].startswith("Nobody to score as of")
    assert "created_at" in problems[0]
    assert "POST /api/v1/users" in problems[0]
    job, run = _run(db, answer.json()["id"])
    assert run.users == 0
    assert any(p["problem"].startswith("Nobody to score") for p in job.problems)


def test_users_without_events_or_history_are_told_what_to_send(
    db: Session, org: Organization
) -> None:
    now = utcnow()
    user = factories.make_user(db, org)
    user.created_at = now - 100 * DAY
    db.flush()
    [problem] = scoring.readiness(db, org.id, now)
    assert problem.startswith("No event before")
    assert "POST /api/v1/events" in problem

    db.add(
        ActivityEvent(
            organization_id=org.id,
            user_id=user.id,
            type="login",
            occurred_at=now - 10 * DAY,
            properties={},
        )
    )
    db.flush()
    [problem] = scoring.readiness(db, org.id, now)
    assert problem.startswith("Too little history to calibrate")
    job = scoring.start(db, actor=system_actor(org.id, "tests"), as_of=now)
    assert [p["problem"] for p in job.problems] == [problem]


def test_the_definition_is_said_in_words_and_checked() -> None:
    assert churn_definition.DEFAULT.sentence() == (
        "The chance of no sign-in and no event in the next 30 days."
    )
    scoped = churn_definition.parse_target("event:account.closed@login/14")
    assert scoped.sentence(60) == (
        "The chance that account.closed happens in the next 60 days, among users who did "
        "login in the last 14 days who have no account.closed yet."
    )
    assert churn_definition.parse_target("inactivity:post.created").sentence() == (
        "The chance of no event of type post.created in the next 30 days."
    )
    with pytest.raises(churn_definition.InvalidInput):
        churn_definition.parse_target("event:")
    with pytest.raises(churn_definition.InvalidInput):
        churn_definition.parse_target("cancelled")


def test_an_event_types_fall_suggests_an_agents_outreach_first() -> None:
    from userdesk.churn import service

    found = service.suggested(["post.created fell 70% in 4 weeks (10 to 3)"], "medium")
    assert found == [service.ASSIGN_OUTREACH, service.RE_ENGAGE]
    assert service.suggested(["No post.created for 40 days"], "medium") == [service.RE_ENGAGE]


def test_an_event_type_nobody_in_scope_did_yet_does_not_stop_training() -> None:
    """The days since the churn event itself are unknown for everyone in scope: the
    models still train, and predict."""
    from datetime import UTC, datetime

    from userdesk.churn.features import IN_WEEKS, LAST_7, LAST_28, PREVIOUS_28, FeatureColumns

    rng = np.random.default_rng(3)

    def snapshot(at: datetime, n: int = 1_500) -> boosting.Snapshot:
        width = len(FeatureColumns.ROW)
        users = [(i, *values) for i, values in enumerate(rng.uniform(0, 50, (n, width)).tolist())]
        posts = rng.poisson(3, n)
        # (user, type, days, windows, weight): P events two days back (in the last 7 days
        # and so on) and 3 forty days back, each in the last 12 weeks
        recent = LAST_7 | LAST_28 | IN_WEEKS
        events = [
            event
            for i, p in enumerate(posts.tolist())
            for event in [(i, 0, 2.0, recent, 0)] * p
            + [(i, 0, 40.0, PREVIOUS_28 | IN_WEEKS, 0)] * 3
        ]
        names = ["post.created", "account.closed"]
        columns = FeatureColumns.of_rows(users, events, names)
        churned = (rng.random(n) < 0.2 + 0.1 * (posts == 0)).astype(np.float64)
        return boosting.Snapshot(at, columns, churned, tuple(names))

    now = datetime(2026, 6, 1, tzinfo=UTC)
    history = [snapshot(now - k * 14 * DAY) for k in range(4)]
    trained = boosting.train(history, require_better=False)
    assert trained is not None
    assert trained.types == ("post.created", "account.closed")
    assert len(trained.probabilities(history[0].columns)) == 1_500
