"""The database-backed rate limiter."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import Engine, delete, func, select
from sqlalchemy.orm import Session

from tests.conftest import BoundDatabase
from userdesk.auth import throttle
from userdesk.auth.models import ThrottleHit
from userdesk.auth.throttle import RateLimited, wait_message
from userdesk.db.base import utcnow
from userdesk.db.session import Database
from userdesk.errors import NotAuthenticated

WINDOW = timedelta(minutes=10)


def test_the_wait_is_said_in_whole_minutes_rounded_up() -> None:
    assert wait_message(1) == "Too many attempts. Try again in 1 minute."
    assert wait_message(60) == "Too many attempts. Try again in 1 minute."
    assert wait_message(61) == "Too many attempts. Try again in 2 minutes."
    assert wait_message(600) == "Too many attempts. Try again in 10 minutes."
    assert RateLimited(90).code == "auth.rate_limited"
    assert RateLimited(90).message == "Too many attempts. Try again in 2 minutes."


def test_hits_beyond_the_limit_are_refused_until_the_window_slides_past(db: Session) -> None:
    start = utcnow()
    for minute in range(3):
        throttle.limit(
            db,
            action="t",
            key="k",
            max_hits=3,
            window=WINDOW,
            now=start + timedelta(minutes=minute),
        )
    with pytest.raises(RateLimited) as refused:
        throttle.limit(
            db, action="t", key="k", max_hits=3, window=WINDOW, now=start + timedelta(minutes=3)
        )
    # The oldest hit leaves the window at start + 10 minutes: 7 minutes from now.
    assert refused.value.retry_after == 7 * 60
    assert refused.value.message == "Too many attempts. Try again in 7 minutes."
    # A refused hit is not counted: the wait does not grow by asking again.
    with pytest.raises(RateLimited) as again:
        throttle.limit(
            db, action="t", key="k", max_hits=3, window=WINDOW, now=start + timedelta(minutes=4)
        )
    assert again.value.retry_after == 6 * 60
    throttle.limit(
        db,
        action="t",
        key="k",
        max_hits=3,
        window=WINDOW,
        now=start + timedelta(minutes=10, seconds=1),
    )


def test_keys_and_actions_are_counted_apart(db: Session) -> None:
    now = utcnow()
    throttle.limit(db, action="a", key="k", max_hits=1, window=WINDOW, now=now)
    throttle.limit(db, action="a", key="other", max_hits=1, window=WINDOW, now=now)
    throttle.limit(db, action="b", key="k", max_hits=1, window=WINDOW, now=now)
    with pytest.raises(RateLimited):
        throttle.limit(db, action="a", key="k", max_hits=1, window=WINDOW, now=now)


def test_keys_are_stored_hashed_and_old_rows_are_pruned(db: Session) -> None:
    start = utcnow()
    throttle.limit(db, action="t", key="203.0.113.9", max_hits=5, window=WINDOW, now=start)
    assert db.scalar(select(func.count()).where(ThrottleHit.key == "203.0.113.9")) == 0
    throttle.limit(
        db, action="t", key="203.0.113.9", max_hits=5, window=WINDOW, now=start + 2 * WINDOW
    )
    times = throttle.recent_hits(
        db, action="t", key="203.0.113.9", window=10 * WINDOW, now=start + 2 * WINDOW
    )
    assert times == [start + 2 * WINDOW]


def test_a_hit_is_kept_when_the_request_that_made_it_rolls_back(
    database: BoundDatabase,
) -> None:
    """A wrong password rolls its request back, yet the attempt counts."""

    def failing_request() -> None:
        with database.unit_of_work() as db:
            throttle.limit(db, action="t", key="rolled", max_hits=1, window=WINDOW)
            raise NotAuthenticated("The email or password is not right.")

    with pytest.raises(NotAuthenticated):
        failing_request()
    with pytest.raises(RateLimited), database.unit_of_work() as db:
        throttle.limit(db, action="t", key="rolled", max_hits=1, window=WINDOW)


def test_a_committed_hit_is_written_once(database: BoundDatabase) -> None:
    with database.unit_of_work() as db:
        throttle.limit(db, action="t", key="once", max_hits=5, window=WINDOW)
    with database.unit_of_work() as db:
        assert len(throttle.recent_hits(db, action="t", key="once", window=WINDOW)) == 1


@pytest.fixture
def real_database(engine: Engine) -> Database:
    """Sessions on the engine itself, committing for real (rows are removed after)."""
    return Database(engine)


def test_on_a_real_database_a_hit_outlives_the_rollback_and_counts_exactly_under_load(
    real_database: Database,
) -> None:
    """Twelve requests at once against a limit of five, each failing after its hit: every
    hit that got through is kept. On PostgreSQL exactly five get through; on SQLite a hit
    is rewritten just after its request rolls back, and a request that takes the write
    lock in between may not see it, so a burst can pass a few more (never all)."""
    key = f"load-{uuid.uuid4().hex}"
    allowed: list[int] = []
    refused: list[int] = []
    lock = threading.Lock()

    def attempt(n: int) -> None:
        try:
            with real_database.unit_of_work() as db:
                throttle.limit(db, action="t", key=key, max_hits=5, window=WINDOW)
                with lock:
                    allowed.append(n)
                raise NotAuthenticated("wrong password")
        except RateLimited:
            with lock:
                refused.append(n)
        except NotAuthenticated:
            pass

    try:
        threads = [threading.Thread(target=attempt, args=(n,)) for n in range(12)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if real_database.dialect == "postgresql":
            assert (len(allowed), len(refused)) == (5, 7)
        else:
            assert 5 <= len(allowed) < 12
        with real_database.unit_of_work(write=False) as db:
            kept = throttle.recent_hits(db, action="t", key=key, window=WINDOW)
        assert len(kept) == len(allowed)
    finally:
        with real_database.unit_of_work() as db:
            db.execute(delete(ThrottleHit).where(ThrottleHit.key == throttle._digest(key)))
