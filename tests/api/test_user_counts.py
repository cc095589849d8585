"""The Users list's figures: exact when counting is quick, estimates labelled as such when
it is not, always within the reader's reach, on both databases."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.orm import Session

from tests import factories
from userdesk.access import service as access
from userdesk.organizations.models import Organization
from userdesk.users import service as users
from userdesk.users.schemas import Count, UserCounts


def _figures(counts: UserCounts) -> dict[str, Count]:
    return {"all": counts.all, "without_login": counts.without_login, **counts.statuses}


def _people(db: Session, org: Organization) -> Organization:
    """23 active (11 never signed in), 5 banned, 2 pending in ORG; 9 users of another
    organization created in between, so that ORG's ids have gaps."""
    other = factories.make_organization(db)
    for n in range(23):
        user = factories.make_user(db, org, first_name=f"Ann{n}", password=None)
        if n % 2:
            user.last_login_at = user.created_at
        if n % 3 == 0:
            factories.make_user(db, other, first_name=f"Ann{n}", password=None)
    for _ in range(5):
        factories.make_user(db, org, status="banned", password=None)
    for _ in range(2):
        factories.make_user(db, org, status="pending", password=None)
    db.flush()
    return other


def test_quick_counts_are_exact_in_one_statement_and_leave_out_the_status_term(
    db: Session, org: Organization
) -> None:
    _people(db, org)
    admin = factories.make_admin(db, org, password=None)  # active, never signed in
    actor = access.actor_for_user(db, admin)
    counts = users.count_users(db, actor=actor, q="status:banned")
    assert counts.all == Count(count=31)
    assert counts.statuses["active"] == Count(count=24)
    assert counts.statuses["banned"] == Count(count=5)
    assert counts.statuses["pending"] == Count(count=2)
    assert counts.statuses["deleted"] == Count(count=0)
    assert counts.without_login == Count(count=31 - 11)
    assert not any(f.estimated or f.capped for f in _figures(counts).values())


def test_a_sample_that_reads_every_id_is_exact(db: Session, org: Organization) -> None:
    """With no time for the one statement, the sample walks the id range; given time and
    a high cap it reads every id once, so it lands on the exact figures."""
    _people(db, org)
    actor = access.actor_for_user(db, factories.make_admin(db, org, password=None))
    quick = users.count_users(db, actor=actor, q="ann")
    sampled = users.count_users(
        db, actor=actor, q="ann", cap=1_000, exact_within=0, sample_within=60
    )
    assert sampled == quick
    assert quick.all == Count(count=23)


def test_a_sample_stopped_at_the_cap_gives_estimates_labelled_as_such(
    db: Session, org: Organization
) -> None:
    for _ in range(600):  # more than one block of ids
        factories.make_user(db, org, password=None, roles=())
    actor = access.actor_for_user(db, factories.make_admin(db, org, password=None))
    counts = users.count_users(db, actor=actor, cap=5, exact_within=0, sample_within=60)
    for figure in (counts.all, counts.statuses["active"]):
        assert figure.estimated
        assert not figure.capped
        assert figure.label.startswith("≈ ")
    # Every id here is a match: the share read is the share found, so the scale is right.
    assert 550 <= counts.all.count <= 650
    # None found in the sample: too few to scale, so "at least none", not "about none".
    assert counts.statuses["banned"] == Count(count=0, capped=True)
    assert counts.statuses["banned"].label == "0+"


def test_a_team_administrator_counts_its_team_only(db: Session, org: Organization) -> None:
    _people(db, org)
    team = factories.make_team(db, org, "Support EU")
    for status in ("active", "active", "banned"):
        factories.make_user(db, org, status=status, team=team, first_name="Ann", password=None)
    lead = factories.make_user(db, org, roles=("Team Administrator",), team=team)
    actor = access.actor_for_user(db, lead)
    for within in ({}, {"cap": 1_000, "exact_within": 0, "sample_within": 60}):
        counts = users.count_users(db, actor=actor, q="ann", **within)  # type: ignore[arg-type]
        assert counts.all == Count(count=3), within
        assert counts.statuses["banned"] == Count(count=1), within


def test_a_count_statement_past_its_deadline_is_stopped_and_the_transaction_goes_on(
    db: Session, org: Organization
) -> None:
    connection = db.connection()
    slow = (
        "SELECT count(*) FROM (WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n"
        " WHERE i < 100000000) SELECT i FROM n) AS numbers"
    )
    started = time.monotonic()
    deadline = time.monotonic() + 0.05
    with pytest.raises(users._OutOfTime), users._stopped_at(connection, deadline):
        connection.execute(text(slow)).all()
    assert time.monotonic() - started < 2
    assert connection.execute(text("SELECT 1")).scalar() == 1
    assert db.get(Organization, org.id) is not None


class _Clock:
    """time.monotonic, moved by hand."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def monotonic(self) -> float:
        return self.now


@pytest.mark.parametrize("reading", [0.01, 0.1])
def test_reading_the_query_counts_against_the_time_unless_it_ran_long(
    db: Session, org: Organization, monkeypatch: pytest.MonkeyPatch, reading: float
) -> None:
    """The exact count stops EXACT_WITHIN after the call, reading the query (its names,
    its probes) included, or _EXACT_LEAST after the reading when that ran longer; the
    sample stops EXACT_WITHIN + SAMPLE_WITHIN after the call, not after the exact count."""
    actor = access.actor_for_user(db, factories.make_admin(db, org, password=None))
    clock = _Clock()
    monkeypatch.setattr(users, "time", clock)
    reads = users.matching

    def slow_matching(*args: Any, **kwargs: Any) -> Any:
        clock.now += reading
        return reads(*args, **kwargs)

    deadlines: dict[str, float] = {}

    @contextmanager
    def stopped_at(_connection: Any, deadline: float) -> Iterator[None]:
        deadlines["exact"] = deadline - 1_000.0
        raise users._OutOfTime
        yield  # pragma: no cover - a generator, so that it is a context manager

    def sampled(_connection: Any, _where: Any, *, cap: int, deadline: float) -> UserCounts:
        deadlines["sample"] = deadline - 1_000.0
        return users._Tally().exact()

    monkeypatch.setattr(users, "matching", slow_matching)
    monkeypatch.setattr(users, "_stopped_at", stopped_at)
    monkeypatch.setattr(users, "_sampled", sampled)
    users.count_users(db, actor=actor, q="ann")
    exact = max(users.COUNT_EXACT_WITHIN, reading + users._EXACT_LEAST)
    assert deadlines["exact"] == pytest.approx(exact)
    total = users.COUNT_EXACT_WITHIN + users.COUNT_SAMPLE_WITHIN
    assert deadlines["sample"] == pytest.approx(total)


def test_the_api_counts_say_whether_they_are_estimates(
    client: TestClient, db: Session, org: Organization
) -> None:
    _people(db, org)
    key = factories.make_api_key(db, org)
    body = client.get(
        "/api/v1/users/counts", params={"q": "ann"}, headers={"Authorization": f"Bearer {key}"}
    ).json()
    assert body["all"] == {"count": 23, "capped": False, "estimated": False}
    assert body["statuses"]["active"] == {"count": 23, "capped": False, "estimated": False}
    assert body["without_login"]["count"] == 12


def test_a_team_key_counts_its_team_only(
    client: TestClient, db: Session, org: Organization
) -> None:
    _people(db, org)
    team = factories.make_team(db, org, "Sales")
    factories.make_user(db, org, team=team, status="banned", password=None)
    key = factories.make_api_key(db, org, "Team Administrator", team=team)
    body = client.get("/api/v1/users/counts", headers={"Authorization": f"Bearer {key}"}).json()
    assert body["all"]["count"] == 1
    assert body["statuses"]["banned"]["count"] == 1
