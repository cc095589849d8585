"""A small organization with months of varied activity in two teams, scored."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.orm import Session

from tests import factories
from userdesk.access.models import Team
from userdesk.access.rules import system_actor
from userdesk.activity.models import ActivityEvent
from userdesk.churn import scoring
from userdesk.churn.models import ChurnRun
from userdesk.db.base import utcnow
from userdesk.jobs import service as jobs
from userdesk.organizations.models import Organization
from userdesk.users.models import User

DAY = timedelta(days=1)


@dataclass
class Scored:
    org: Organization
    team_a: Team
    team_b: Team
    users: list[User]  # scored: in team A, in team B, in none, in turn
    run: ChurnRun


def run_scoring(db: Session, org: Organization) -> ChurnRun:
    """Score ORG's users now, the whole job at once."""
    job = scoring.start(db, actor=system_actor(org.id, "tests"))
    while not jobs.step(db, job=job, base_url="http://testserver"):
        pass
    assert job.status == "done", job.problems
    return db.get_one(ChurnRun, job.params["run_id"])


def scored_organization(db: Session, org: Organization, *, people: int = 30) -> Scored:
    """PEOPLE users, from steady to long gone (some never seen), spread over two teams and
    none, each with a different history of events; then one scoring run."""
    rng = random.Random(19)
    team_a, team_b = factories.make_team(db, org, "Alpha"), factories.make_team(db, org, "Beta")
    now = utcnow()
    made = []
    for n in range(people):
        user = factories.make_user(db, org, team=(team_a, team_b, None)[n % 3])
        user.created_at = now - 300 * DAY
        quiet_for = rng.choice((0.5, 3, 20, 45, 90, 200))
        for _ in range(rng.randint(0, 40)):
            db.add(
                ActivityEvent(
                    organization_id=org.id,
                    user_id=user.id,
                    type=rng.choice(("login", "page.viewed", "post.created")),
                    occurred_at=now - (quiet_for + rng.uniform(0, 120)) * DAY,
                    properties={},
                )
            )
        made.append(user)
    db.flush()
    return Scored(org, team_a, team_b, made, run_scoring(db, org))
