"""A seeded synthetic product, sent through the public API as a host product would.

Accounts sign up over the first 200 days of a 320-day history (their `created_at`
backfilled). Each signs in, posts (`post.created`, carrying a `count` of items), comments
and, for some, exports reports. At a moment of its own, an account's posting and
commenting fall to a fifth while its sign-ins go on as before; most such accounts cancel
(`subscription.cancelled`) 15 to 45 days later and go silent. Accounts that export
reports fall half as often. So churn (the cancellation, and the silence after it) is
told by the fall in posts and comments, not by the volume of events, which sign-ins keep
up: a model that weighs event types and their trends must beat a logistic regression on
log-counts, which sees levels only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from fastapi.testclient import TestClient

DAY = timedelta(days=1)
HISTORY_DAYS = 320
CANCELLED = "subscription.cancelled"
TYPES = ("login", "post.created", "comment.added", "report.exported")


@dataclass(frozen=True)
class Product:
    """What was sent: the accounts' ids by email, the events, and when the history ends."""

    now: datetime
    user_ids: dict[str, str]
    events: int
    cancelled: int


def accounts_and_events(
    accounts: int, now: datetime, seed: int = 19
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
    """The accounts as POST /api/v1/users/batch takes them, and their events as POST
    /api/v1/events takes them (by email), and how many cancelled."""
    rng = np.random.default_rng(seed)
    start = now - HISTORY_DAYS * DAY
    users: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    cancelled = 0
    for n in range(accounts):
        email = f"acct{n}@synthetic.example"
        signed_up = float(rng.uniform(0, 200))
        users.append(
            {
                "email": email,
                "first_name": "Account",
                "last_name": str(n),
                "created_at": (start + signed_up * DAY).isoformat(),
            }
        )
        reporter = rng.random() < 0.3
        rates = {
            "login": rng.gamma(3.0, 0.05),  # a day
            "post.created": rng.gamma(2.0, 0.09),
            "comment.added": rng.gamma(2.0, 0.05),
            "report.exported": rng.gamma(2.0, 0.02) if reporter else 0.0,
        }
        falls_at = signed_up + float(rng.exponential(260.0 if reporter else 130.0))
        cancels_at = falls_at + float(rng.uniform(15, 45)) if rng.random() < 0.85 else float("inf")
        ends = min(float(HISTORY_DAYS), cancels_at)
        for kind, rate in rates.items():
            if rate <= 0:
                continue
            times = np.sort(
                rng.uniform(signed_up, ends, size=rng.poisson(rate * (ends - signed_up)))
            )
            if kind in ("post.created", "comment.added"):  # a fifth of them after the fall
                times = times[(times < falls_at) | (rng.random(len(times)) < 0.2)]
            for t in times.tolist():
                item: dict[str, Any] = {
                    "email": email,
                    "type": kind,
                    "occurred_at": (start + t * DAY).isoformat(),
                }
                if kind == "post.created":
                    item["properties"] = {"count": int(rng.integers(1, 5))}
                events.append(item)
        if cancels_at < HISTORY_DAYS:
            cancelled += 1
            events.append(
                {
                    "email": email,
                    "type": CANCELLED,
                    "occurred_at": (start + cancels_at * DAY).isoformat(),
                    "properties": {"plan": "team"},
                }
            )
    return users, events, cancelled


def send(client: TestClient, key: str, accounts: int, now: datetime, seed: int = 19) -> Product:
    """Create the accounts (with their backfilled sign-up dates) and send their events,
    through the public API only, in batches of 1,000."""
    users, events, cancelled = accounts_and_events(accounts, now, seed)
    headers = {"Authorization": f"Bearer {key}"}
    ids: dict[str, str] = {}
    for first in range(0, len(users), 1000):
        chunk = users[first : first + 1000]
        answer = client.post("/api/v1/users/batch", json={"users": chunk}, headers=headers)
        assert answer.status_code == 200, answer.text
        for item in answer.json()["items"]:
            assert item["status"] == "created", item
            ids[chunk[item["index"]]["email"]] = item["id"]
    for first in range(0, len(events), 1000):
        answer = client.post("/api/v1/events", json=events[first : first + 1000], headers=headers)
        assert answer.status_code == 200, answer.text
        assert not answer.json().get("errors"), answer.json()["errors"][:3]
    return Product(now=now, user_ids=ids, events=len(events), cancelled=cancelled)
