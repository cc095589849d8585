"""Scoring reads the next range of users on a connection of its own while it scores the
current one; what it scores is the same as reading the ranges in turn."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, delete, select

from tests import factories
from userdesk.access.rules import system_actor
from userdesk.activity.models import ActivityEvent
from userdesk.churn import scoring
from userdesk.churn.models import ChurnScore
from userdesk.db.base import utcnow
from userdesk.db.session import Database
from userdesk.jobs import service as jobs
from userdesk.jobs.models import Job
from userdesk.organizations import service as organizations
from userdesk.organizations.models import Organization

PEOPLE = 11


@pytest.fixture
def committed_org(engine: Engine) -> Iterator[int]:
    """An organization of PEOPLE users with events, committed; deleted afterwards."""
    database = Database(engine)
    with database.unit_of_work() as db:
        org = organizations.create_organization(db, slug="read-ahead", name="Read ahead")
        now = utcnow()
        for n in range(PEOPLE):
            user = factories.make_user(db, org)
            user.created_at = now - timedelta(days=200)
            for k in range(n * 3):
                db.add(
                    ActivityEvent(
                        organization_id=org.id,
                        user_id=user.id,
                        type="login" if k % 2 else "page.viewed",
                        occurred_at=now - timedelta(days=1 + k * (n + 1)),
                        properties={},
                    )
                )
        org_id = org.id
    yield org_id
    with database.unit_of_work() as db:
        db.execute(delete(Organization).where(Organization.id == org_id))


def _score(database: Database, org_id: int) -> dict[int, float]:
    with database.unit_of_work() as db:
        job_id = scoring.start(db, actor=system_actor(org_id, "tests")).id
    finished = False
    while not finished:
        with database.unit_of_work() as db:
            finished = jobs.step(db, job=db.get_one(Job, job_id), base_url="http://testserver")
    with database.unit_of_work() as db:
        job = db.get_one(Job, job_id)
        assert job.status == "done", job.problems
        scores = db.scalars(select(ChurnScore).where(ChurnScore.run_id == job.params["run_id"]))
        return {s.user_id: s.probability for s in scores}


def test_ranges_read_ahead_score_as_ranges_read_in_turn(
    engine: Engine, committed_org: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = Database(engine)
    monkeypatch.setattr(scoring, "RANGE", 3)  # several steps, each reading the next
    taken: list[int] = []
    take = scoring._read_ahead.take

    def counted(*args: Any) -> Any:
        found = take(*args)
        if found is not None:  # the rows, or (once the model is known) their predictions
            taken.append(len(found.rows) if isinstance(found, scoring._Predicted) else 0)
        return found

    monkeypatch.setattr(scoring._read_ahead, "take", counted)
    ahead = _score(database, committed_org)
    assert len(taken) >= PEOPLE // 3  # the steps found their rows read ahead
    assert any(taken)  # and, once the model was known, their predictions made there
    monkeypatch.setattr(scoring._read_ahead, "start", lambda *args, **kwargs: None)
    in_turn = _score(database, committed_org)
    assert len(ahead) == PEOPLE
    assert ahead == in_turn
