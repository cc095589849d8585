"""Terms that each match many users may together match few, or none: read in sort order,
their page could pass every user ("e login:never seen:>90d" by name: 4 s at a million).
On SQLite such a read is stopped when it runs long, and the page read instead along the
index of a time's range and sorted: the same users, in the same order."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection
from sqlalchemy.orm import Session

from tests import factories
from tests.api.test_query_exact import Person, _order, all_pages, matches, people  # noqa: F401
from tests.db.test_list_plans import page_plans
from userdesk.access.rules import system_actor
from userdesk.db.base import utcnow
from userdesk.organizations.models import Organization
from userdesk.query import builder
from userdesk.query.rules import parse
from userdesk.users import service

SPARSE = (
    "e login:never seen:>90d",  # none: who never signed in was never seen
    "a login:never seen:>30d",
    "team:Billing seen:>30d",  # a team's list with the range: one interval of its index
    "e team:Sales seen:<30d verified:yes",
    "a verified:no seen:<30d",
    "login:never validated:no created:>30d",
    "e verified:yes seen:>30d created:>60d",
)


@pytest.mark.parametrize("listed", [True, False])
@pytest.mark.parametrize("sort", ["name", "-name", "email", "created", "-seen", "seen"])
def test_a_sparse_query_pages_exactly_when_its_range_is_read_instead(
    client: TestClient,
    db: Session,
    org: Organization,
    people: list[Person],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    sort: str,
    listed: bool,
) -> None:
    """Every read in sort order runs long (its time is 0): each page comes from the range
    (with the text's list, or without: checked row by row), and the pages together list
    exactly the matching people in the sort's order."""
    monkeypatch.setattr(builder, "FEW", 0)  # as at a million users: no term lists few
    monkeypatch.setattr(service, "READ_IN_ORDER_WITHIN", 0)
    if not listed:
        monkeypatch.setattr(builder, "TEXT_LISTED_MOST", 0)
    key = factories.make_api_key(db, org)
    now = utcnow()
    by_id = {p.id: p for p in people}
    for q in SPARSE:
        expected = [i for i in _order(people, sort) if matches(by_id[i], parse(q), now)]
        got = [int(u["id"]) for u in all_pages(client, key, q, sort, limit=7)]
        assert got == expected, (q, sort)


@pytest.mark.only_on("sqlite")
def test_a_read_in_sort_order_that_runs_long_falls_back_to_the_range(
    db: Session,
    org: Organization,
    people: list[Person],  # noqa: F811
    connection: Connection,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No term has a list to check, so none could be sorted instead: the range on last
    seen is read along its index, and its users sorted."""
    monkeypatch.setattr(builder, "FEW", 0)
    monkeypatch.setattr(builder, "TEXT_LISTED_MOST", 0)  # "e": a word too common to list
    monkeypatch.setattr(service, "READ_IN_ORDER_WITHIN", 0)
    with page_plans(db) as plans:
        service.list_users(db, actor=system_actor(org.id), q="e verified:no seen:>1d", sort="name")
    assert len(plans) == 2, plans  # the read in sort order, stopped; then the range's
    assert "ix_users_org_name" in plans[0], plans
    assert "ix_users_org_last_seen" in plans[1], plans
    assert "TEMP B-TREE FOR ORDER BY" in plans[1], plans


@pytest.mark.only_on("sqlite")
def test_never_signed_in_within_a_range_of_last_seen_is_listed_by_one_index(
    db: Session,
    org: Organization,
    people: list[Person],  # noqa: F811
    connection: Connection,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """login:never and a range of last seen each list many users, together few (here none:
    who never signed in was never seen): ix_users_org_last_login lists them together, by
    the sign-in then the last seen time (migration 0038), and the page sorts those few."""
    monkeypatch.setattr(builder, "FEW", 5)
    with page_plans(db) as plans:
        page = service.list_users(
            db, actor=system_actor(org.id), q="login:never seen:<30d", sort="name"
        )
    assert page.items == []
    assert len(plans) == 1, plans
    assert (
        "ix_users_org_last_login (organization_id=? AND last_login_at=? AND last_seen_at>?)"
        in (plans[0])
    ), plans
