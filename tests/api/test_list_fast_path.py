"""The Users list reads its pages and links through statements compiled once per shape
(db.prepared) and builds each user from a row's tuple: what it shows is what the model
path (a User loaded with its links, `loaded_user_view`) shows, byte for byte."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, selectinload

from tests import factories
from userdesk.access.models import Team
from userdesk.access.rules import Actor, system_actor
from userdesk.db import prepared
from userdesk.db.base import UTCDateTime, utcnow
from userdesk.organizations.models import Organization
from userdesk.users import service
from userdesk.users.models import User
from userdesk.users.schemas import loaded_user_view
from userdesk.web.json import dumps


@pytest.fixture
def people(db: Session, org: Organization) -> Organization:
    """Users with and without a team, groups and roles; banned for a while and for good;
    never seen, seen; unverified; a name left blank (shown by email); the same first and
    last names (the id breaks the tie)."""
    support = factories.make_team(db, org, "Support")
    sales = factories.make_team(db, org, "Sales")
    vip = factories.make_group(db, org, "VIP")
    beta = factories.make_group(db, org, "Beta")
    now = utcnow()
    made = [
        factories.make_user(db, org, first_name="Ann", team=support, groups=[vip, beta]),
        factories.make_user(db, org, first_name="Ann", roles=()),
        factories.make_user(db, org, first_name="Ann", roles=("Agent", "Member")),
        factories.make_user(db, org, first_name="", last_name="", team=sales),
        factories.make_user(db, org, first_name="Bob", status="banned", groups=[beta]),
        factories.make_user(db, org, first_name="Cid", status="banned"),
        factories.make_user(db, org, first_name="Dee", status="disabled", roles=()),
        factories.make_user(db, org, first_name="Eve", status="pending", team=support),
    ]
    for index, user in enumerate(made):
        user.last_seen_at = now - timedelta(days=index, microseconds=index) if index % 3 else None
        user.created_at = now - timedelta(hours=index) if index != 2 else now.replace(microsecond=0)
    made[4].status_until = now + timedelta(days=3)
    made[5].status_reason = "spam"
    made[6].email_verified_at = None
    made[7].validated_at = now
    db.flush()
    return org


def model_views(db: Session, ids: list[str]) -> list[dict[str, object]]:
    """The users of IDS as the model path shows them, in that order."""
    users = db.scalars(
        select(User)
        .where(User.id.in_([int(i) for i in ids]))
        .options(selectinload(User.team), selectinload(User.groups), selectinload(User.roles))
        .execution_options(populate_existing=True)
    ).all()
    by_id = {str(u.id): u for u in users}
    return [loaded_user_view(by_id[i]) for i in ids]


def every_page(db: Session, actor: Actor, q: str, sort: str, limit: int) -> list[dict[str, object]]:
    items: list[dict[str, object]] = []
    cursor = None
    while True:
        page = service.list_users(db, actor=actor, q=q, sort=sort, limit=limit, cursor=cursor)
        items.extend(page.items)
        if page.next_cursor is None:
            return items
        cursor = page.next_cursor


@pytest.mark.parametrize("sort", list(service.SORTS))
@pytest.mark.parametrize("q", ["", "status:banned", "ann", "team:Support", "verified:no"])
def test_every_page_shows_what_the_model_shows(
    db: Session, people: Organization, sort: str, q: str
) -> None:
    """Page by page (two users a page, so that every kind of cursor is walked), each user
    serializes to the very bytes of the model path's view, in the order of the sort."""
    actor = system_actor(people.id)
    shown = every_page(db, actor, q, sort, limit=2)
    whole = service.list_users(db, actor=actor, q=q, sort=sort, limit=500).items
    assert [u["id"] for u in shown] == [u["id"] for u in whole]
    assert shown, q
    assert dumps(shown) == dumps(model_views(db, [str(u["id"]) for u in shown]))


def test_a_shape_seen_before_runs_with_the_new_values(db: Session, people: Organization) -> None:
    """The page statement of `status:banned` is compiled once; `status:disabled`, of the
    same shape, finds its own users through it, not the first query's."""
    actor = system_actor(people.id)
    banned = service.list_users(db, actor=actor, q="status:banned").items
    disabled = service.list_users(db, actor=actor, q="status:disabled").items
    assert {u["status"] for u in banned} == {"banned"}
    assert [u["status"] for u in disabled] == ["disabled"]
    again = service.list_users(db, actor=actor, q="status:banned").items
    assert again == banned


def test_a_team_scoped_key_lists_its_team_alone(
    client: TestClient, db: Session, people: Organization
) -> None:
    """A scope with a list of teams (an expanding IN, compiled per request) pages right."""
    support = db.scalars(
        select(Team).where(Team.organization_id == people.id, Team.name == "Support")
    ).one()
    key = factories.make_api_key(db, people, "Team Administrator", team=support)
    response = client.get("/api/v1/users", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert items
    assert {u["team"]["name"] for u in items} == {"Support"}


def test_the_api_page_is_the_model_path_json(
    client: TestClient, db: Session, people: Organization
) -> None:
    key = factories.make_api_key(db, people)
    headers = {"Authorization": f"Bearer {key}"}
    first = client.get("/api/v1/users", params={"limit": 3, "sort": "-seen"}, headers=headers)
    assert first.status_code == 200
    body = first.json()
    ids = [u["id"] for u in body["items"]]
    assert first.content == dumps(
        {"items": model_views(db, ids), "next_cursor": body["next_cursor"]}
    )
    after = client.get(
        "/api/v1/users",
        params={"limit": 3, "sort": "-seen", "cursor": body["next_cursor"]},
        headers=headers,
    )
    assert after.status_code == 200
    assert not set(ids) & {u["id"] for u in after.json()["items"]}


@pytest.mark.parametrize(
    "stored",
    [
        "2024-03-01 12:34:56.123456",
        "2024-03-01 12:34:56.000000",
        "2024-03-01 12:34:56",
        "2024-03-01 12:34:56.123456+02:00",
    ],
)
def test_sqlite_times_read_quickly_are_read_as_before(stored: str) -> None:
    from sqlalchemy.dialects import sqlite

    dialect = sqlite.dialect()
    kind = UTCDateTime()
    quick = kind.dialect_impl(dialect).result_processor(dialect, None)
    impl = kind.impl_instance.dialect_impl(dialect).result_processor(dialect, None)
    assert quick is not None
    general = kind.process_result_value(impl(stored) if impl else stored, dialect)
    read = quick(stored)
    assert read == general
    assert read is not None
    assert read.tzinfo is general.tzinfo  # type: ignore[union-attr]


def test_a_failing_prepared_statement_fails_as_sqlalchemy_says(db: Session) -> None:
    """Read on the driver's cursor, an error still comes as SQLAlchemy's (the handlers of
    a locked database or an interrupted page catch those)."""
    with pytest.raises(DBAPIError):
        prepared._fetch(db.connection(), "SELECT no_such_column FROM users", {})
