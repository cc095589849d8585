"""Scoring runs as a job over every user: the database's sums match the pure features,
scores and levels are written with their history, and the API tells why."""

from __future__ import annotations

import dataclasses
import random
from datetime import datetime, timedelta

import numpy as np
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
from userdesk.churn import rules as churn_rules
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
    rows, columns = scoring.features_of(db, org.id, as_of, lambda column: column > 0)
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


def _per_type(
    events: list[tuple[str, datetime, dict[str, object]]], as_of: datetime, kind: str
) -> tuple[float, float, float, float | None, int]:
    """What a user's events of type KIND say, counted one by one: weighted counts in the
    last 7 and 28 days and the 28 before, the days since the last (None: none in the last
    12 weeks) and the weeks with one."""

    def weight(properties: dict[str, object]) -> float:
        for name in ("count", "quantity"):
            value = properties.get(name)
            if isinstance(value, int | float) and not isinstance(value, bool):
                return max(float(value), 0.0)
        return 1.0

    mine = [(when, weight(p)) for k, when, p in events if k == kind and when < as_of]
    recent = [when for when, _ in mine if when >= as_of - 84 * DAY]
    return (
        sum(w for when, w in mine if when >= as_of - 7 * DAY),
        sum(w for when, w in mine if when >= as_of - 28 * DAY),
        sum(w for when, w in mine if as_of - 56 * DAY <= when < as_of - 28 * DAY),
        (as_of - max(recent)) / DAY if recent else None,
        len({int((as_of - when) / DAY // 7) for when in recent}),
    )


def test_the_database_adds_up_each_event_types_numbers_as_counted_one_by_one(
    db: Session, org: Organization
) -> None:
    """One pass over the events per user and type gives each type's weighted numbers and
    the user's own, as counted event by event; an event exactly 12 weeks back counts for
    its type's weeks, not for the user's."""
    rng = random.Random(7)
    as_of = utcnow().replace(microsecond=0)
    kinds = ("login", "post.created", "message.sent")
    weights: list[dict[str, object]] = [{}, {"count": 3}, {"quantity": 2.5}, {"count": -1}]
    weights.append({"count": "many"})
    people, sent = [], {}
    for n in range(10):
        user = factories.make_user(db, org)
        user.created_at = as_of - 400 * DAY
        events = [
            (rng.choice(kinds), as_of - rng.uniform(0.01, 150) * DAY, rng.choice(weights))
            for _ in range(rng.randint(0, 40))
        ]
        if n == 0:  # one event, exactly at the start of the 12 weeks
            events = [("post.created", as_of - 84 * DAY, {})]
        events.append(("message.sent", as_of + DAY, {"count": 9}))  # after: not counted
        for kind, when, properties in events:
            db.add(
                ActivityEvent(
                    organization_id=org.id,
                    user_id=user.id,
                    type=kind,
                    occurred_at=when,
                    properties=properties,
                )
            )
        people.append(user)
        sent[user.id] = events
    db.flush()
    types = [
        {"name": "post.created", "weighted": False},
        {"name": "message.sent", "weighted": True},
        {"name": "never.sent", "weighted": False},
    ]
    rows, columns = scoring.features_of(db, org.id, as_of, lambda column: column > 0, types)
    at = {row.id: i for i, row in enumerate(rows)}
    assert columns.types is not None
    assert columns.types.names == ("post.created", "message.sent", "never.sent")
    for person in people:
        i, events = at[person.id], sent[person.id]
        activity = Activity.of_events([(kind, when) for kind, when, _ in events], as_of)
        assert columns.events_7[i] == activity.last_7
        assert columns.events_28[i] == activity.last_28
        assert columns.events_90[i] == activity.last_90
        assert columns.active_week_share[i] * 12 == pytest.approx(activity.active_weeks)
        for k, kind in enumerate(("post.created", "message.sent", "never.sent")):
            counted = _per_type(
                [(kd, when, p if kd == "message.sent" else {}) for kd, when, p in events],
                as_of,
                kind,
            )
            read = columns.types
            assert read.last_7[i, k] == pytest.approx(counted[0]), kind
            assert read.last_28[i, k] == pytest.approx(counted[1]), kind
            assert read.previous_28[i, k] == pytest.approx(counted[2]), kind
            days = float(read.days_since[i, k])
            assert (None if days != days else days) == pytest.approx(counted[3], abs=1e-4)
            assert read.active_weeks[i, k] == counted[4], kind
    first = at[people[0].id]
    assert columns.types.active_weeks[first, 0] == 1  # its type's one week
    assert columns.active_week_share[first] == 0.0  # not one of the user's 12 weeks
    assert columns.days_since_event[first] == pytest.approx(84, abs=1e-4)


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
    assert churn_rules.cutoffs_of(db.get_one(Organization, org.id)) == (0.01, 0.02)
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
    _, columns = scoring.features_of(db, org.id, utcnow(), lambda c: c == person.id)
    assert columns.row(0).days_since_event is None


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


def test_probabilities_are_rounded_as_python_rounds_them() -> None:
    """The scores' rounding on whole arrays gives what round() gives, halves included."""
    values = np.concatenate(
        [
            np.random.default_rng(5).random(200_000),
            np.arange(0, 10_001) / 10_000 + 0.00005,  # about halfway between 4-decimal values
            np.arange(0, 1_001) / 1_000 + 0.0005,
            np.array([0.0, 0.5, 1.0, 0.12345, 0.99995]),
        ]
    )
    for digits in (3, 4):
        assert scoring._rounded(values, digits) == [round(v, digits) for v in values.tolist()]
