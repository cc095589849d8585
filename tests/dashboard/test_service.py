"""The dashboard's figures: daily counts rebuilt from the audit log and kept by the worker,
churn levels per run and the users most at risk, each within the actor's reach."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests import factories
from tests.conftest import BoundDatabase
from userdesk.access import service as access
from userdesk.access.rules import Actor, Grant, Permission
from userdesk.audit.models import AuditEvent
from userdesk.churn.models import ChurnRun, ChurnScore
from userdesk.config import Settings
from userdesk.dashboard import service as dashboard
from userdesk.dashboard.models import RunLevel, StatusDay
from userdesk.db.base import utcnow
from userdesk.errors import PermissionDenied
from userdesk.organizations.models import Organization
from userdesk.users.models import User
from userdesk.users.rules import UserStatus
from userdesk.worker import Worker

TODAY = date(2026, 11, 23)


def _at(day: date, hour: int = 12) -> datetime:
    return datetime.combine(day, time(hour), UTC)


def _ago(days: int) -> date:
    return TODAY - timedelta(days=days)


def _changed(
    db: Session, org: Organization, user: User, day: date, before: str, after: str
) -> None:
    db.add(
        AuditEvent(
            organization_id=org.id,
            occurred_at=_at(day),
            actor_name="tests",
            action="user.changed",
            target_type="user",
            target_id=str(user.id),
            changes={"status": {"from": before, "to": after}, "validated": {"from": 0, "to": 1}},
        )
    )


def _user(db: Session, org: Organization, created: date, **kwargs: object) -> User:
    user = factories.make_user(db, org, **kwargs)  # type: ignore[arg-type]
    user.created_at = _at(created, 9)
    db.flush()
    return user


def _on(history: dashboard.StatusHistory, day: date) -> dict[str, int]:
    i = history.days.index(day)
    return {status: values[i] for status, values in history.series.items() if values[i]}


def test_the_first_count_rebuilds_the_past_from_created_at_and_status_changes(
    db: Session, org: Organization
) -> None:
    mine = factories.make_team(db, org, "Mine")
    theirs = factories.make_team(db, org, "Theirs")
    admin = _user(db, org, _ago(400), roles=("Administrator",), team=mine)
    newcomer = _user(db, org, _ago(10), team=mine)
    banned = _user(db, org, _ago(30), status="banned", team=mine)
    _changed(db, org, banned, _ago(5), "active", "banned")
    back = _user(db, org, _ago(200), team=mine)
    _changed(db, org, back, _ago(60), "pending", "active")
    _changed(db, org, back, _ago(20), "active", "disabled")
    _changed(db, org, back, _ago(15), "disabled", "active")
    _user(db, org, _ago(300), status="trashed", team=theirs)
    _user(db, org, _ago(300), status="deleted", team=theirs)
    db.add(  # not a status change: left alone
        AuditEvent(
            organization_id=org.id,
            occurred_at=_at(_ago(3)),
            actor_name="tests",
            action="user.updated",
            target_type="user",
            target_id=str(newcomer.id),
            changes={"first_name": {"from": "A", "to": "B"}},
        )
    )
    db.flush()

    assert dashboard.record_day(db, org.id, TODAY) == 1 + dashboard.DAYS
    history = dashboard.status_history(db, actor=access.actor_for_user(db, admin), today=TODAY)

    assert len(history.days) == dashboard.DAYS
    assert history.days[-1] == TODAY
    assert set(history.series) == {s.value for s in UserStatus}  # Deleted included
    assert _on(history, TODAY) == {"active": 3, "banned": 1, "trashed": 1, "deleted": 1}
    # Five days ago the ban happened at noon: the day ends banned; the day before, active.
    assert _on(history, _ago(5)) == {"active": 3, "banned": 1, "trashed": 1, "deleted": 1}
    assert _on(history, _ago(6)) == {"active": 4, "trashed": 1, "deleted": 1}
    # The newcomer counts from the day they were created.
    assert _on(history, _ago(11)) == {"active": 3, "trashed": 1, "deleted": 1}
    assert _on(history, _ago(18)) == {"active": 2, "disabled": 1, "trashed": 1, "deleted": 1}
    assert _on(history, _ago(61)) == {"active": 1, "pending": 1, "trashed": 1, "deleted": 1}
    assert _on(history, _ago(89)) == {"active": 1, "pending": 1, "trashed": 1, "deleted": 1}

    team_admin = _user(db, org, _ago(400), roles=("Team Administrator",), team=theirs)
    theirs_only = dashboard.status_history(
        db, actor=access.actor_for_user(db, team_admin), today=TODAY
    )
    assert _on(theirs_only, _ago(18)) == {"trashed": 1, "deleted": 1}


def test_a_later_count_of_the_same_day_replaces_it_and_adds_no_past(
    db: Session, org: Organization
) -> None:
    admin = _user(db, org, _ago(400), roles=("Administrator",))
    dashboard.record_day(db, org.id, TODAY)
    rows = db.execute(
        select(func.count()).select_from(StatusDay).where(StatusDay.organization_id == org.id)
    ).scalar_one()
    _user(db, org, TODAY, status="pending")
    assert dashboard.record_day(db, org.id, TODAY) == 1
    dashboard.record_day(db, org.id, TODAY + timedelta(days=1))
    history = dashboard.status_history(
        db, actor=access.actor_for_user(db, admin), today=TODAY + timedelta(days=1)
    )
    assert _on(history, TODAY) == {"active": 1, "pending": 1}
    assert _on(history, TODAY + timedelta(days=1)) == {"active": 1, "pending": 1}
    after = db.execute(
        select(func.count()).select_from(StatusDay).where(StatusDay.organization_id == org.id)
    ).scalar_one()
    assert after == rows + 3  # today's pending row, and tomorrow's two rows


def _run(
    db: Session, org: Organization, as_of: datetime, scores: list[tuple[User, float, str]]
) -> ChurnRun:
    run = ChurnRun(
        organization_id=org.id, as_of=as_of, model="test", users=len(scores), finished_at=as_of
    )
    db.add(run)
    db.flush()
    for user, probability, level in scores:
        db.add(
            ChurnScore(
                organization_id=org.id,
                run_id=run.id,
                user_id=user.id,
                probability=probability,
                level=level,
                reasons=[f"reason of {user.first_name}"],
            )
        )
    db.flush()
    return run


def test_levels_per_run_and_the_users_most_at_risk_stay_within_reach(
    db: Session, org: Organization
) -> None:
    mine = factories.make_team(db, org, "Mine")
    theirs = factories.make_team(db, org, "Theirs")
    admin = factories.make_admin(db, org)
    a = factories.make_user(db, org, first_name="Ann", team=mine)
    b = factories.make_user(db, org, first_name="Bob", team=mine)
    c = factories.make_user(db, org, first_name="Cid", team=theirs)
    gone = factories.make_user(db, org, first_name="Gus", team=mine, status="trashed")
    now = datetime.now(UTC)
    _run(db, org, now - timedelta(days=2), [(a, 0.2, "low"), (b, 0.1, "low"), (c, 0.9, "high")])
    unfinished = ChurnRun(organization_id=org.id, as_of=now, model="test", users=0)
    db.add(unfinished)
    latest = _run(
        db,
        org,
        now - timedelta(days=1),
        [(a, 0.7, "high"), (b, 0.4, "medium"), (c, 0.95, "high"), (gone, 0.99, "high")],
    )

    assert dashboard.run_levels(db, actor=access.actor_for_user(db, admin)) == []  # not counted
    assert dashboard.store_runs(db, org.id, dashboard.measure_runs(db, org.id)) == 2
    runs = dashboard.run_levels(db, actor=access.actor_for_user(db, admin))
    assert [r.counts for r in runs] == [
        {"low": 2, "medium": 0, "high": 1},
        {"low": 0, "medium": 1, "high": 3},
    ]
    assert runs[-1].run_id == latest.id
    # Counted once: the rows are kept for the next reader.
    assert db.scalar(select(func.count()).select_from(RunLevel).where(RunLevel.run_id == latest.id))
    assert dashboard.measure_runs(db, org.id) == {}
    top = dashboard.most_at_risk(db, actor=access.actor_for_user(db, admin))
    assert [(u.name, u.probability) for u in top] == [
        ("Cid Tester", 0.95),
        ("Ann Tester", 0.7),
        ("Bob Tester", 0.4),
    ]
    assert top[0].reasons == ["reason of Cid"]

    team_admin = factories.make_user(db, org, roles=("Team Administrator",), team=mine)
    scoped = access.actor_for_user(db, team_admin)
    assert [u.user_id for u in dashboard.most_at_risk(db, actor=scoped, limit=1)] == [a.id]
    assert [r.counts for r in dashboard.run_levels(db, actor=scoped)] == [
        {"low": 2, "medium": 0, "high": 0},
        {"low": 0, "medium": 1, "high": 2},  # the trashed user was scored in that run
    ]


def test_churn_figures_need_activity_and_the_dashboard_needs_users_read(
    db: Session, org: Organization
) -> None:
    member = factories.make_user(db, org)
    with pytest.raises(PermissionDenied):
        dashboard.dashboard(db, actor=access.actor_for_user(db, member))
    reader = Actor(org.id, None, None, "reader", (Grant(frozenset({Permission.USERS_READ})),))
    seen = dashboard.dashboard(db, actor=reader, today=TODAY)
    assert not seen.churn_visible
    with pytest.raises(PermissionDenied):
        dashboard.most_at_risk(db, actor=reader)
    admin = factories.make_admin(db, org)
    board = dashboard.dashboard(db, actor=access.actor_for_user(db, admin), today=TODAY)
    assert board.churn_visible
    assert board.statuses.days == []
    assert board.runs == []
    assert board.at_risk == []


def test_the_worker_counts_every_organization_at_most_once_an_hour(
    database: BoundDatabase, settings: Settings, db: Session, org: Organization
) -> None:
    factories.make_user(db, org, status="pending")
    worker = Worker(database, settings)
    assert worker.count_statuses() >= 1
    today = utcnow().date()
    counted = db.scalars(
        select(StatusDay).where(StatusDay.organization_id == org.id, StatusDay.day == today)
    ).all()
    assert [(row.status, row.users) for row in counted] == [("pending", 1)]
    assert worker.count_statuses() == 0  # not again within the hour
    now = utcnow()
    run = ChurnRun(organization_id=org.id, as_of=now, model="t", users=0, finished_at=now)
    db.add(run)
    db.flush()
    admin = access.actor_for_user(db, factories.make_admin(db, org))
    assert dashboard.dashboard(db, actor=admin).levels_pending
    assert worker.count_runs() >= 1
    assert not dashboard.dashboard(db, actor=admin).levels_pending
    assert dashboard.run_levels(db, actor=admin)[-1].counts == {"low": 0, "medium": 0, "high": 0}
