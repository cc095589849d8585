"""The mixed workload of `make load` (run by load/run.py, which sets LOAD_CONFIG).

Admins list, search and open users and disable and enable them; the host product posts
events in batches and creates users; one job user runs an import at the start and exports
a view over and over. What the server answered is kept in a `Tally` that load/run.py
counts against the database afterwards (load/checks.py).
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import os
import random
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from locust import HttpUser, between, constant, events, task

from load.checks import EVENT_TYPE, Tally, created_email, event_id, imported_email

CONFIG: dict[str, Any] = json.loads(Path(os.environ["LOAD_CONFIG"]).read_text())
RUN: str = CONFIG["run"]
TALLY = Tally(run=RUN)
TARGETS: list[int] = list(CONFIG["targets"])  # active users to disable and enable, each owned once
SAMPLE: list[int] = CONFIG["sample"]  # ids of users to open and post events for
TERMS: list[str] = CONFIG["terms"]
SORTS = ("name", "-created", "seen", "email")
EVENTS_PER_BATCH = 100
NUMBERS = itertools.count(1)


class ApiUser(HttpUser):
    abstract = True

    def on_start(self) -> None:
        self.client.headers["Authorization"] = f"Bearer {CONFIG['api_key']}"


class Admin(ApiUser):
    """An admin in the console's shoes (through the API): mostly reading, now and then
    disabling or enabling one of the users it alone looks after."""

    weight = 3
    wait_time = between(0.05, 0.3)

    def on_start(self) -> None:
        super().on_start()
        self.mine = {TARGETS.pop(): "active" for _ in range(min(10, len(TARGETS)))}

    @task(4)
    def list_users(self) -> None:
        self.client.get(f"/api/v1/users?limit=50&sort={random.choice(SORTS)}", name="list")

    @task(3)
    def search(self) -> None:
        term = random.choice(TERMS)
        self.client.get("/api/v1/users", params={"q": term, "limit": 50}, name="search")

    @task(3)
    def open_user(self) -> None:
        self.client.get(f"/api/v1/users/{random.choice(SAMPLE)}", name="open")

    @task(2)
    def toggle(self) -> None:
        if not self.mine:
            return
        user_id = random.choice(list(self.mine))
        action = "disable" if self.mine[user_id] == "active" else "enable"
        body = {"reason": "Load test"} if action == "disable" else {}
        with self.client.post(
            f"/api/v1/users/{user_id}/{action}", json=body, name=action, catch_response=True
        ) as response:
            if response.status_code == 200:
                self.mine[user_id] = TALLY.statuses[str(user_id)] = response.json()["status"]
                if action == "disable":
                    TALLY.disables += 1
                else:
                    TALLY.enables += 1
            else:
                response.failure(f"{response.status_code}: {response.text[:200]}")


class HostProduct(ApiUser):
    """The host product: batches of its users' events, and new users signing up."""

    weight = 2
    wait_time = between(0.05, 0.3)

    @task(3)
    def post_events(self) -> None:
        now = datetime.now(UTC).isoformat()
        batch = [
            {
                "user_id": str(random.choice(SAMPLE)),
                "type": EVENT_TYPE,
                "occurred_at": now,
                "id": event_id(RUN, str(next(NUMBERS))),
            }
            for _ in range(EVENTS_PER_BATCH)
        ]
        with self.client.post(
            "/api/v1/events", json=batch, name=f"events ({EVENTS_PER_BATCH})", catch_response=True
        ) as response:
            if response.status_code == 200:
                answer = response.json()
                TALLY.events_accepted += answer["accepted"]
                TALLY.events_duplicates += answer["duplicates"]
                if answer["errors"]:
                    response.failure(f"refused events: {answer['errors'][:3]}")
            else:
                response.failure(f"{response.status_code}: {response.text[:200]}")

    @task(1)
    def create_user(self) -> None:
        email = created_email(RUN, uuid.uuid4().hex[:12])
        body = {"email": email, "first_name": "Load", "last_name": f"Test {RUN}"}
        with self.client.post(
            "/api/v1/users", json=body, name="create user", catch_response=True
        ) as response:
            if response.status_code == 201:
                TALLY.created.append(email)
            else:
                response.failure(f"{response.status_code}: {response.text[:200]}")


class Jobs(ApiUser):
    """One operator: an import started at once, and an export of a view over and over."""

    fixed_count = 1
    wait_time = constant(1)

    def on_start(self) -> None:
        super().on_start()
        rows = CONFIG["import_rows"]
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["email", "first_name", "last_name"])
        for n in range(rows):
            writer.writerow([imported_email(RUN, n), "Imported", f"Row {n}"])
        with self.client.post(
            "/api/v1/imports",
            files={"file": (f"load-{RUN}.csv", out.getvalue().encode(), "text/csv")},
            data={"dry_run": "false"},
            name="import (start)",
            catch_response=True,
        ) as response:
            if response.status_code == 202:
                TALLY.import_job = int(response.json()["id"])
                TALLY.import_rows = rows
            else:
                response.failure(f"{response.status_code}: {response.text[:200]}")

    @task
    def export(self) -> None:
        with self.client.get(
            "/api/v1/users/export",
            params={"q": CONFIG["export_q"]},
            name="export",
            catch_response=True,
        ) as response:  # read whole: its time is the export's
            lines = response.content.count(b"\n")
            if response.status_code != 200 or lines < 2:
                response.failure(f"{response.status_code}: {lines} lines")


@events.test_stop.add_listener
def keep_tally(**_: Any) -> None:
    TALLY.save(Path(CONFIG["tally"]))
