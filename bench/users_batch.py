"""POST /api/v1/users/batch: users a second for a host product's sync on SQLite.

A temporary SQLite database of its own, never bench/data's; the real app in process
(FastAPI's TestClient: the request's parsing, the unit of work and the answer included).
BATCHES batches of 1,000 new users, each with a team, a group and a backfilled created_at,
into an organization that grows to BATCHES x 1,000; then the same batches again (each item
"unchanged"), as a sync that runs every hour sends them.

    .venv/bin/python -m bench.users_batch
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from userdesk.access import service as access
from userdesk.access.models import Group, Team
from userdesk.access.rules import system_actor
from userdesk.auth import service as auth
from userdesk.config import Settings
from userdesk.db.migrate import upgrade
from userdesk.db.session import Database
from userdesk.organizations import service as organizations
from userdesk.web.app import create_app

BATCHES = 10
SIZE = 1000


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'batch.db'}"
        database = Database.from_url(url)
        upgrade(database.engine)
        with database.unit_of_work() as db:
            org = organizations.create_organization(db, slug="bench", name="Bench")
            actor = system_actor(org.id, "bench")
            team = Team(organization_id=org.id, name="Sales")
            db.add(team)
            group = Group(organization_id=org.id, name="VIP")
            db.add(group)
            db.flush()
            role = access.get_role_by_name(db, org.id, "Administrator")
            secret = auth.create_api_key(db, actor=actor, name="bench", role=role, team=None).secret
            team_id, group_id = str(team.id), str(group.id)
        settings = Settings(
            database_url=url,
            secret_key="bench",  # noqa: S106 - a throwaway database's
            base_url="http://bench",
            smtp_url=None,
            mail_from="Bench <bench@example.com>",
            var_dir=Path(tmp),
            churn_every_hours=0,
        )
        app = create_app(settings, database)
        batches = [
            [
                {
                    "email": f"person{b * SIZE + n}@example.com",
                    "first_name": f"Person{n}",
                    "last_name": "Synced",
                    "team_id": team_id,
                    "group_ids": [group_id],
                    "created_at": f"20{20 + n % 5}-0{1 + n % 9}-1{n % 10}T08:00:00Z",
                }
                for n in range(SIZE)
            ]
            for b in range(BATCHES)
        ]
        with TestClient(app) as client:
            headers = {"Authorization": f"Bearer {secret}"}
            for label, status in (("new", "created"), ("again", "unchanged")):
                rates = []
                for users in batches:
                    started = time.perf_counter()
                    answer: Any = client.post(
                        "/api/v1/users/batch", json={"users": users}, headers=headers
                    ).json()
                    seconds = time.perf_counter() - started
                    assert answer[status] == SIZE, answer
                    rates.append(SIZE / seconds)
                print(
                    f"{label:>5}: {SIZE:,} users a batch, median {statistics.median(rates):,.0f} "
                    f"users/s (slowest {min(rates):,.0f}, fastest {max(rates):,.0f})"
                )
        database.dispose()


if __name__ == "__main__":
    main()
