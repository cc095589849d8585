"""Scoring as of a past date reads what was true then: the status and the validation
taken back through the audit log, the email verified, the user created and the last
sign-in before that date, never what the rows say today."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.orm import Session

from tests import factories
from userdesk.access import service as access
from userdesk.activity.models import ActivityEvent
from userdesk.churn import scoring
from userdesk.db.base import utcnow
from userdesk.organizations.models import Organization
from userdesk.users import lifecycle
from userdesk.users.models import User
from userdesk.users.rules import Action

DAY = timedelta(days=1)


def _person(db: Session, org: Organization, **kwargs: object) -> User:
    """A user created 200 days ago, verified then, with a login 20 days ago."""
    user = factories.make_user(db, org, **kwargs)  # type: ignore[arg-type]
    user.created_at = utcnow() - 200 * DAY
    user.email_verified_at = utcnow() - 199 * DAY
    db.add(
        ActivityEvent(
            organization_id=org.id,
            user_id=user.id,
            type="login",
            occurred_at=utcnow() - 20 * DAY,
            properties={},
        )
    )
    db.flush()
    return user


def _rows_as_of(db: Session, org: Organization, days_ago: int) -> dict[int, dict[str, float]]:
    as_of = utcnow() - days_ago * DAY
    rows, columns = scoring.features_of(db, org.id, as_of, lambda c: c > 0)
    read = ("accepted", "verified", "validated", "days_since_login")
    return {
        row.id: {name: float(getattr(columns, name)[i]) for name in read}
        for i, row in enumerate(rows)
    }


def test_a_user_disabled_or_trashed_after_the_date_is_scored_as_they_were_then(
    db: Session, org: Organization
) -> None:
    admin = factories.make_admin(db, org)
    actor = access.actor_for_user(db, admin)
    disabled, trashed, pending = (_person(db, org) for _ in range(3))
    pending.status = "pending"
    db.flush()
    for user, action, reason in (
        (disabled, Action.DISABLE, "Contract ended"),
        (trashed, Action.TRASH, None),
    ):
        lifecycle.apply(
            db,
            actor=actor,
            user_id=user.id,
            action=action,
            given=lifecycle.ActionInput(reason=reason),
            base_url="http://testserver",
        )
    assert (disabled.status, trashed.status) == ("disabled", "trashed")
    then = _rows_as_of(db, org, 10)
    assert then[disabled.id]["accepted"] == 1
    assert then[trashed.id]["accepted"] == 1  # trashed today, scored as active then
    assert then[pending.id]["accepted"] == 0
    problems = scoring.readiness(db, org.id, utcnow() - 10 * DAY)
    assert problems
    assert not problems[0].startswith("Nobody to score"), problems
    now = _rows_as_of(db, org, 0)
    assert trashed.id not in now  # today's status counts from today on
    assert now[disabled.id]["accepted"] == 1


def test_a_user_verified_or_validated_after_the_date_counts_as_not_yet(
    db: Session, org: Organization
) -> None:
    admin = factories.make_admin(db, org)
    actor = access.actor_for_user(db, admin)
    late, early = _person(db, org), _person(db, org)
    late.email_verified_at = utcnow() - 2 * DAY
    db.flush()
    for user in (late, early):
        lifecycle.apply(
            db,
            actor=actor,
            user_id=user.id,
            action=Action.VALIDATE,
            base_url="http://testserver",
        )
    then = _rows_as_of(db, org, 10)
    assert (then[late.id]["verified"], then[early.id]["verified"]) == (0, 1)
    assert (then[late.id]["validated"], then[early.id]["validated"]) == (0, 0)
    now = _rows_as_of(db, org, 0)
    assert (now[late.id]["verified"], now[late.id]["validated"]) == (1, 1)


def test_a_user_created_after_the_date_is_not_scored(db: Session, org: Organization) -> None:
    old, new = _person(db, org), _person(db, org)
    new.created_at = utcnow() - 5 * DAY
    db.flush()
    then = _rows_as_of(db, org, 10)
    assert old.id in then
    assert new.id not in then
    assert new.id in _rows_as_of(db, org, 0)


def test_the_last_sign_in_is_the_last_before_the_date(db: Session, org: Organization) -> None:
    """A login after the date is not seen then; a last_login_at sent by a client before
    the date counts even without its event."""
    user, backfilled = _person(db, org), _person(db, org)
    db.add(
        ActivityEvent(
            organization_id=org.id,
            user_id=user.id,
            type="login",
            occurred_at=utcnow() - 3 * DAY,
            properties={},
        )
    )
    user.last_login_at = utcnow() - 3 * DAY
    backfilled.last_login_at = utcnow() - 15 * DAY
    db.flush()
    then = _rows_as_of(db, org, 10)
    assert then[user.id]["days_since_login"] == _approx(10)
    assert then[backfilled.id]["days_since_login"] == _approx(5)
    assert _rows_as_of(db, org, 0)[user.id]["days_since_login"] == _approx(3)


def _approx(days: float) -> object:
    return pytest.approx(days, abs=0.01)
