"""Scoring runs as a job over every user: the database's sums match the pure features,
scores and levels are written with their history, and the API tells why."""

from __future__ import annotations

import dataclasses
import random
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests import factories
from tests.conftest import BoundDatabase
from userdesk.access.rules import system_actor
from userdesk.activity.models import SIGN_IN_LOCKED, ActivityEvent
from userdesk.audit.models import AuditEvent
from userdesk.churn import model, scoring
from userdesk.churn.features import Activity, features
from userdesk.churn.models import ChurnRun, ChurnScore
from userdesk.config import Settings
from userdesk.db.base import utcnow
from userdesk.jobs import service as jobs
from userdesk.jobs.models import Job
from userdesk.mail.models import OutboxMessage
from userdesk.organizations.models import Organization
from userdesk.users.models import User
from userdesk.worker import Worker

DAY = timedelta(days=1)


def _with_events(db: Session, org: Organization, ages: list[float], **kwargs: object) -> User:
    user = factories.make_user(db, org, **kwargs)  # type: ignore[arg-type]
    user.created_at = utcnow() - 300 * DAY
    now = utcnow()
    for n, age in enumerate(ages):
        db.add(
            ActivityEvent(
                organization_id=org.id,
                user_id=user.id,
                type="login" if n % 3 == 0 else "page.viewed",
                occurred_at=now - age * DAY,
                properties={},
            )
        )
    db.flush()
    return user


def run_scoring(db: Session, org: Organization) -> ChurnRun:
    job = scoring.start(db, actor=system_actor(org.id, "tests"))
    while not jobs.step(db, job=job, base_url="http://testserver"):
        pass
    assert job.status == "done", job.problems
    return db.get_one(ChurnRun, job.params["run_id"])


def test_the_database_adds_up_what_the_pure_features_count(db: Session, org: Organization) -> None:
    rng = random.Random(3)
    people = [
        _with_events(db, org, [rng.uniform(0.1, 130) for _ in range(rng.randint(0, 30))])
        for _ in range(12)
    ]
    people[0].status = "pending"
    people[1].email_verified_at = None
    db.flush()
    as_of = utcnow()
    rows = db.execute(
        scoring._statement(db.get_bind().dialect.name, org.id, as_of, lambda column: column > 0)
    ).all()
    columns = scoring._columns(rows)
    at = {row.id: i for i, row in enumerate(rows)}
    for person in people:
        events = db.execute(
            select(ActivityEvent.type, ActivityEvent.occurred_at).where(
                ActivityEvent.user_id == person.id
            )
        ).all()
        expected = features(
            Activity.of_events([(t, when) for t, when in events], as_of),
            as_of=as_of,
            created_at=person.created_at,
            verified=person.email_verified_at is not None,
            validated=person.validated_at is not None,
            status=person.status,
        )
        got = columns.row(at[person.id], status=person.status)
        for field in dataclasses.fields(expected):
            want, have = getattr(expected, field.name), getattr(got, field.name)
            if isinstance(want, float):
                assert have == pytest.approx(want, abs=1e-4), field.name
            else:
                assert have == want, field.name
    assert model.scores(columns).tolist() == pytest.approx(
        [model.score(columns.row(i)) for i in range(len(columns))]
    )
    for calibration in (model.Calibration(), model.Calibration(0.8, 1.5)):
        together = model.predict_all(columns, calibration)
        alone = [model.predict(columns.row(i), calibration) for i in range(len(columns))]
        assert together.levels == [p.level for p in alone]
        assert together.reasons == [p.reasons for p in alone]
        assert together.probabilities == pytest.approx([p.probability for p in alone])
    assert set(model.predict_all(columns, model.Calibration(0.8, 1.5)).levels) != {"low"}


def test_a_run_scores_every_user_keeps_the_history_and_sets_the_levels(
    db: Session, org: Organization, client: TestClient
) -> None:
    steady = _with_events(db, org, [d + 0.5 for d in range(0, 120, 2)])
    quiet = _with_events(db, org, [d + 40 for d in range(0, 80, 3)])
    trashed = _with_events(db, org, [1.0], status="trashed")
    first = run_scoring(db, org)
    second = run_scoring(db, org)
    db.expire_all()
    assert first.finished_at is not None
    scored = {
        s.user_id for s in db.scalars(select(ChurnScore).where(ChurnScore.run_id == second.id))
    }
    assert {steady.id, quiet.id} <= scored
    assert trashed.id not in scored
    assert db.get_one(User, quiet.id).churn_level in ("medium", "high")
    assert db.get_one(User, steady.id).churn_level == "low"
    for action in ("churn.scoring_started", "churn.scored"):
        audited = db.scalars(select(AuditEvent).where(AuditEvent.action == action)).all()
        assert len(audited) == 2

    key = factories.make_api_key(db, org)
    read = client.get(
        f"/api/v1/users/{quiet.id}/churn", headers={"Authorization": f"Bearer {key}"}
    ).json()
    assert read["level"] in ("medium", "high")
    assert read["reasons"][0].startswith("No ")
    assert len(read["history"]) == 2
    assert "send_re_engagement" in read["actions"]
    found = client.get(
        "/api/v1/users",
        params={"q": f"churn:{read['level']}"},
        headers={"Authorization": f"Bearer {key}"},
    ).json()["items"]
    assert str(quiet.id) in {u["id"] for u in found}

    sent = client.post(
        f"/api/v1/users/{quiet.id}/re-engagement-email", headers={"Authorization": f"Bearer {key}"}
    )
    assert sent.status_code == 202
    db.expire_all()
    assert db.scalars(select(OutboxMessage).where(OutboxMessage.recipient == quiet.email)).one()
    assert db.scalars(
        select(AuditEvent).where(AuditEvent.action == "user.re_engagement_sent")
    ).one()


def test_the_backtest_calibrates_on_who_really_went_quiet(db: Session, org: Organization) -> None:
    rng = random.Random(11)
    for n in range(120):
        if n % 2:  # regular users who stay
            _with_events(db, org, [d + rng.random() for d in range(0, 150, 3)])
        else:  # users who stopped 40-90 days ago
            stop = rng.uniform(40, 90)
            _with_events(db, org, [stop + d for d in range(0, 60, 4)])
    found = scoring.backtest(db, org.id, utcnow())
    assert found["users"] >= 120
    assert 0.4 < found["churn_rate"] < 0.7
    fitted = model.Calibration(found["a"], found["b"])
    assert fitted.a > 0  # a higher score still means more risk


def test_the_worker_queues_a_scoring_for_each_organization_due_one(
    database: BoundDatabase, settings: Settings, db: Session, org: Organization
) -> None:
    worker = Worker(database, dataclasses.replace(settings, churn_every_hours=24))
    assert worker.schedule_churn() >= 1
    queued = db.scalars(select(Job).where(Job.kind == scoring.KIND)).all()
    assert org.id in {job.organization_id for job in queued}
    worker.churn_checked_at = None
    assert org.id not in scoring.due(db, utcnow(), timedelta(hours=24))  # one is waiting
    off = Worker(database, dataclasses.replace(settings, churn_every_hours=0))
    assert off.schedule_churn() == 0


def test_the_console_shows_the_level_the_reasons_and_acts_in_one_click(
    client: TestClient, db: Session, org: Organization
) -> None:
    admin = factories.make_admin(db, org)
    quiet = _with_events(db, org, [d + 40 for d in range(0, 80, 3)], first_name="Quinn")
    run_scoring(db, org)
    csrf = factories.login(client, admin.email)
    listed = client.get("/console/users", params={"q": "Quinn"}).text
    assert 'data-testid="churn-level"' in listed
    page = client.get(f"/console/users/{quiet.id}").text
    assert 'data-testid="churn-reasons"' in page
    assert "No sign-in for" in page or "No activity for" in page
    sent = client.post(f"/console/users/{quiet.id}/re-engagement-email", data={"csrf_token": csrf})
    assert sent.status_code == 303
    db.expire_all()
    assert db.scalars(select(OutboxMessage).where(OutboxMessage.recipient == quiet.email)).one()


def test_the_level_cutoffs_are_an_organization_setting(
    client: TestClient, db: Session, org: Organization
) -> None:
    admin = factories.make_admin(db, org)
    csrf = factories.login(client, admin.email)
    form = {"invitation_ttl_days": "7", "csrf_token": csrf}
    bad = client.post("/console/settings", data={**form, "churn_medium": "70", "churn_high": "40"})
    assert bad.status_code == 400
    assert "are not in order" in bad.text
    saved = client.post("/console/settings", data={**form, "churn_medium": "1", "churn_high": "2"})
    assert saved.status_code == 303
    db.expire_all()
    assert scoring.cutoffs_of(db.get_one(Organization, org.id)) == (0.01, 0.02)
    quiet = _with_events(db, org, [d + 40 for d in range(0, 80, 3)])
    run_scoring(db, org)
    db.expire_all()
    assert db.get_one(User, quiet.id).churn_level == "high"  # almost anyone is, at 2%


def test_a_locked_sign_in_is_no_sign_of_activity(db: Session, org: Organization) -> None:
    """Someone guessing a dormant user's password does not make the user look active."""
    person = _with_events(db, org, [])
    db.add(
        ActivityEvent(
            organization_id=org.id,
            user_id=person.id,
            type=SIGN_IN_LOCKED,
            occurred_at=utcnow() - DAY,
            properties={},
        )
    )
    db.flush()
    rows = db.execute(
        scoring._statement(db.get_bind().dialect.name, org.id, utcnow(), lambda c: c == person.id)
    ).all()
    assert scoring._columns(rows).row(0).days_since_event is None


def test_ranges_skip_the_ids_of_other_organizations(
    db: Session, org: Organization, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An organization whose users come after many others' is scored in as many steps as
    its own users fill ranges, not as many as there are ids before them."""
    other = factories.make_organization(db)
    for _ in range(30):
        factories.make_user(db, other)
    mine = [factories.make_user(db, org) for _ in range(5)]
    monkeypatch.setattr(scoring, "RANGE", 2)
    job = scoring.start(db, actor=system_actor(org.id, "tests"))
    steps = 1
    while not jobs.step(db, job=job, base_url="http://testserver"):
        steps += 1
    assert job.status == "done", job.problems
    assert steps == 1 + 3  # the backtest, then ranges of 2, 2 and 1 of the five
    scored = db.scalars(
        select(ChurnScore.user_id).where(ChurnScore.run_id == job.params["run_id"])
    ).all()
    assert sorted(scored) == sorted(p.id for p in mine)
