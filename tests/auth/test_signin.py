"""Signing in: failed attempts per account, the lock they bring, and re-hashing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests import factories
from tests.conftest import BoundDatabase
from userdesk.activity.models import ActivityEvent
from userdesk.auth import rules, secrets, signin
from userdesk.auth import service as auth
from userdesk.config import Settings
from userdesk.db.base import utcnow
from userdesk.errors import NotAuthenticated
from userdesk.organizations.models import Organization

WRONG = "not the password at all"


def attempt(db: Session, settings: Settings, email: str, password: str, at_seconds: float) -> str:
    """Sign in at T0 + AT_SECONDS; 'ok' or the refusal's code and message."""
    try:
        signin.sign_in(
            db,
            settings=settings,
            email=email,
            password=password,
            now=T0 + timedelta(seconds=at_seconds),
        )
    except NotAuthenticated as exc:
        return f"{exc.code}: {exc.message}"
    return "ok"


T0 = utcnow()
REFUSED = f"auth.invalid_credentials: {signin.INVALID_CREDENTIALS}"


def test_the_lock_grows_from_one_minute_doubling_up_to_an_hour() -> None:
    lengths = [rules.lock_length(n) for n in range(1, 14)]
    assert lengths[:4] == [timedelta(0)] * 4
    assert [int(x.total_seconds() // 60) for x in lengths[4:]] == [1, 2, 4, 8, 16, 32, 60, 60, 60]


def test_five_failures_lock_the_account_and_the_right_password_then_answers_as_a_wrong_one(
    db: Session, settings: Settings, org: Organization
) -> None:
    user = factories.make_user(db, org)
    for n in range(rules.LOCK_AFTER):
        assert attempt(db, settings, user.email, WRONG, n) == REFUSED
    # Locked for a minute from the fifth failure (at 4 s): the right password is refused
    # exactly as a wrong one is.
    assert attempt(db, settings, user.email, factories.PASSWORD, 10) == REFUSED
    assert attempt(db, settings, user.email, factories.PASSWORD, 63) == REFUSED
    assert attempt(db, settings, user.email, factories.PASSWORD, 65) == "ok"


def test_each_further_failure_doubles_the_lock(
    db: Session, settings: Settings, org: Organization
) -> None:
    user = factories.make_user(db, org)
    for n in range(rules.LOCK_AFTER):
        attempt(db, settings, user.email, WRONG, n)
    # After the first lock (until 64 s) a sixth failure at 70 s locks for two minutes.
    assert attempt(db, settings, user.email, WRONG, 70) == REFUSED
    assert attempt(db, settings, user.email, factories.PASSWORD, 70 + 119) == REFUSED
    # Attempts during a lock do not count: the lock still ends two minutes after 70 s.
    assert attempt(db, settings, user.email, factories.PASSWORD, 70 + 121) == "ok"


def test_a_success_resets_the_count(db: Session, settings: Settings, org: Organization) -> None:
    user = factories.make_user(db, org)
    for n in range(rules.LOCK_AFTER - 1):
        attempt(db, settings, user.email, WRONG, n)
    assert attempt(db, settings, user.email, factories.PASSWORD, 5) == "ok"
    for n in range(rules.LOCK_AFTER - 1):
        attempt(db, settings, user.email, WRONG, 6 + n)
    assert attempt(db, settings, user.email, factories.PASSWORD, 12) == "ok"


def test_failures_are_counted_per_account_not_per_email_typed(
    db: Session, settings: Settings, org: Organization
) -> None:
    """Another account's failures do not lock this one."""
    user = factories.make_user(db, org)
    other = factories.make_user(db, org)
    for n in range(rules.LOCK_AFTER):
        attempt(db, settings, other.email, WRONG, n)
    assert attempt(db, settings, user.email, factories.PASSWORD, 6) == "ok"


def test_a_new_password_lifts_the_lock(db: Session, settings: Settings, org: Organization) -> None:
    user = factories.make_user(db, org)
    for n in range(rules.LOCK_AFTER):
        attempt(db, settings, user.email, WRONG, n)
    auth.set_password(db, user=user, password="a brand new passphrase")
    assert attempt(db, settings, user.email, "a brand new passphrase", 10) == "ok"


def test_a_lock_goes_in_the_users_timeline(
    db: Session, settings: Settings, org: Organization
) -> None:
    user = factories.make_user(db, org)
    for n in range(rules.LOCK_AFTER):
        attempt(db, settings, user.email, WRONG, n)
    event = db.scalars(
        select(ActivityEvent).where(
            ActivityEvent.user_id == user.id, ActivityEvent.type == "sign_in_locked"
        )
    ).one()
    assert event.properties["failures"] == rules.LOCK_AFTER
    assert event.properties["minutes"] == 1


def test_failures_count_though_each_request_rolls_back(
    database: BoundDatabase, settings: Settings
) -> None:
    """Each wrong password fails its request (a rollback), and the fifth still locks."""
    with database.unit_of_work() as db:
        org = factories.make_organization(db)
        email = factories.make_user(db, org).email
    for n in range(rules.LOCK_AFTER):
        with pytest.raises(NotAuthenticated), database.unit_of_work() as db:
            signin.sign_in(
                db, settings=settings, email=email, password=WRONG, now=T0 + timedelta(seconds=n)
            )
    with pytest.raises(NotAuthenticated), database.unit_of_work() as db:
        signin.sign_in(
            db,
            settings=settings,
            email=email,
            password=factories.PASSWORD,
            now=T0 + timedelta(seconds=10),
        )
    with database.unit_of_work() as db:
        locks = db.scalars(select(ActivityEvent).where(ActivityEvent.type == "sign_in_locked"))
        assert len(locks.all()) == 1


@pytest.mark.real_argon2
def test_a_password_is_rehashed_when_the_argon2_parameters_rise(
    db: Session, settings: Settings, org: Organization, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = factories.make_user(db, org)
    old = user.password_hash
    assert old is not None
    current = secrets._hasher
    stronger = PasswordHasher(
        time_cost=current.time_cost + 1,
        memory_cost=current.memory_cost,
        parallelism=current.parallelism,
    )
    monkeypatch.setattr(secrets, "_hasher", stronger)
    assert secrets.password_needs_rehash(old)
    signin.sign_in(db, settings=settings, email=user.email, password=factories.PASSWORD)
    db.refresh(user)
    assert user.password_hash != old
    assert user.password_hash is not None
    assert f"t={current.time_cost + 1}," in user.password_hash
    assert not secrets.password_needs_rehash(user.password_hash)
    assert secrets.verify_password(user.password_hash, factories.PASSWORD)
