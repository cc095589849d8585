"""`userdesk demo` on PostgreSQL: the COPY path makes the people the row-by-row path makes."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from sqlalchemy import Connection, func, select, text
from sqlalchemy.orm import Session

from tests import factories
from userdesk import demo
from userdesk.activity.models import ActivityEvent
from userdesk.organizations.models import Organization
from userdesk.users.models import User

COUNT = 3000
TABLES = ("users", "user_groups", "user_roles", "activity_events")


def _schema(connection: Connection) -> list[str]:
    """The definitions of the demo tables' indexes and constraints, and their triggers."""
    return sorted(
        connection.exec_driver_sql(
            "SELECT pg_get_indexdef(indexrelid) FROM pg_index "
            "WHERE indrelid = ANY ('{users,user_groups,user_roles,activity_events}'::regclass[]) "
            "UNION ALL SELECT conname || ' ' || pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = ANY ('{users,user_groups,user_roles,activity_events}'::regclass[]) "
            "UNION ALL SELECT tgname || tgenabled::text FROM pg_trigger "
            "WHERE tgrelid = 'user_roles'::regclass"
        ).scalars()
    )


def _shape(db: Session, org: Organization) -> dict[str, Any]:
    """The shares and means that make the demo's people what they are."""
    org_id = org.id
    people = db.scalars(select(User).where(User.organization_id == org_id)).all()
    n = len(people)

    def shares(values: list[Any]) -> dict[Any, float]:
        return {k: v / len(values) for k, v in Counter(values).items()}

    nulls = {
        column: sum(getattr(p, column) is None for p in people) / n
        for column in demo.USER_COLUMNS
        if column not in ("id", "organization_id")
    }
    per_user = dict(
        db.execute(
            text(
                "SELECT u.id, count(g.group_id) FROM users u LEFT JOIN user_groups g "
                "ON g.user_id = u.id WHERE u.organization_id = :org GROUP BY u.id"
            ),
            {"org": org_id},
        ).all()
    )
    roles = db.execute(
        text(
            "SELECT r.name FROM user_roles ur JOIN roles r ON r.id = ur.role_id "
            "WHERE ur.organization_id = :org"
        ),
        {"org": org_id},
    ).scalars()
    events = db.execute(
        select(ActivityEvent.type, func.count())
        .where(ActivityEvent.organization_id == org_id)
        .group_by(ActivityEvent.type)
    ).all()
    return {
        "users": n,
        "emails": len({p.email_normalized for p in people}),
        "status": shares([p.status for p in people]),
        "created_via": shares([p.created_via for p in people]),
        "in_a_team": sum(p.team_id is not None for p in people) / n,
        "nulls": nulls,
        "groups": shares(list(per_user.values())),
        "roles": shares(list(roles)),
        "events_each": sum(c for _, c in events) / n,
        "event_types": {t for t, _ in events},
    }


def _close(a: dict[Any, float], b: dict[Any, float], within: float) -> list[str]:
    return [
        f"{key}: {a.get(key, 0):.3f} vs {b.get(key, 0):.3f}"
        for key in set(a) | set(b)
        if abs(a.get(key, 0) - b.get(key, 0)) > within
    ]


def test_copy_makes_the_people_of_the_row_path_and_leaves_the_schema_whole(
    db: Session, org: Organization, connection: Connection
) -> None:
    if connection.dialect.name != "postgresql":
        return  # SQLite has the row path alone (tests/test_demo.py)
    before = _schema(connection)
    other = factories.make_organization(db)
    by_copy = demo.populate(db, organization=org, count=COUNT, seed=11)
    by_rows = demo.populate(db, organization=other, count=COUNT, seed=11, copy=False)
    db.expire_all()
    assert _schema(connection) == before  # indexes, constraints and triggers as they were
    assert by_copy.users == by_rows.users == COUNT
    copied, rows = _shape(db, org), _shape(db, other)
    assert copied["users"] == copied["emails"] == COUNT
    assert by_copy.events == db.scalar(
        select(func.count()).where(ActivityEvent.organization_id == org.id)
    )
    assert not _close(copied["status"], rows["status"], 0.04)
    assert (
        set(copied["status"])
        == set(rows["status"])
        == {
            "active",
            "pending",
            "disabled",
            "banned",
            "trashed",
            "deleted",
        }
    )
    assert not _close(copied["created_via"], rows["created_via"], 0.04)
    assert abs(copied["in_a_team"] - rows["in_a_team"]) < 0.04
    assert not _close(copied["nulls"], rows["nulls"], 0.04)  # each column as often filled
    assert not _close(copied["groups"], rows["groups"], 0.04)
    assert not _close(copied["roles"], rows["roles"], 0.02)
    assert sum(copied["roles"].values()) == 1  # one role each: as many links as users
    assert abs(copied["events_each"] / rows["events_each"] - 1) < 0.12
    assert copied["event_types"] == rows["event_types"]


def test_copied_people_are_consistent_and_the_sequences_move_past_them(
    db: Session, org: Organization, connection: Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    if connection.dialect.name != "postgresql":
        return
    # Several chunks, each made by the thread while the one before is copied.
    monkeypatch.setattr(demo, "COPY_CHUNK", 128)
    demo.populate(db, organization=org, count=500, seed=2)
    assert db.scalar(select(func.count()).where(User.organization_id == org.id)) == 500
    # role_ids (kept by a trigger the load turns off) match the role links.
    stale = connection.exec_driver_sql(
        f"SELECT count(*) FROM users WHERE organization_id = {org.id} "  # noqa: S608 - an id
        "AND role_ids IS DISTINCT FROM user_role_ids(id)"
    ).scalar_one()
    assert stale == 0
    last_event = dict(
        db.execute(
            select(ActivityEvent.user_id, func.max(ActivityEvent.occurred_at))
            .where(ActivityEvent.organization_id == org.id)
            .group_by(ActivityEvent.user_id)
        ).all()
    )
    people = db.scalars(select(User).where(User.organization_id == org.id)).all()
    for person in people:
        assert person.last_seen_at == last_event.get(person.id)
        assert person.last_login_at == person.last_seen_at  # the latest visit is a sign-in
        if person.status == "pending":
            assert person.last_seen_at is None
        if person.status_changed_at is not None:
            assert person.created_at <= person.status_changed_at
    # New rows take ids after the demo's, from the sequences.
    added = factories.make_user(db, org)
    assert added.id > max(p.id for p in people)
    event = ActivityEvent(
        organization_id=org.id,
        user_id=added.id,
        type="login",
        occurred_at=added.created_at,
        properties={},
    )
    db.add(event)
    db.flush()
    assert event.id > db.scalar(
        select(func.max(ActivityEvent.id)).where(ActivityEvent.id != event.id)
    )
