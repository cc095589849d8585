"""The query language answers exactly: every query is checked against a brute-force filter
over the same people, on each database, through the API's pages and counts."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from tests import factories
from userdesk import demo
from userdesk.db.base import utcnow
from userdesk.organizations.models import Organization
from userdesk.query import builder
from userdesk.query.builder import words
from userdesk.query.rules import (
    ChoiceTerm,
    FlagTerm,
    Key,
    LoginNeverTerm,
    Query,
    TextTerm,
    TimeTerm,
    parse,
)
from userdesk.users import service
from userdesk.users.models import User
from userdesk.users.rules import UserStatus


@dataclass(frozen=True)
class Person:
    id: int
    first_name: str
    last_name: str
    email: str
    status: str
    team: str | None
    groups: frozenset[str]
    roles: frozenset[str]
    verified: bool
    validated: bool
    churn: str | None
    created_at: datetime
    last_login_at: datetime | None
    last_seen_at: datetime | None


def matches(person: Person, query: Query, now: datetime) -> bool:
    return all(_term(person, term, now) for term in query.terms)


def _term(p: Person, term: object, now: datetime) -> bool:
    if isinstance(term, TextTerm):
        haystack = f"{p.first_name} {p.last_name} {p.email}".lower()
        text = term.text.lower()
        if len(term.text) >= 3 or not words(text):
            return text in haystack
        return all(any(w.startswith(t) for w in words(haystack)) for t in words(text))
    if isinstance(term, ChoiceTerm):
        wanted = {v.lower() for v in term.values}
        return {
            Key.STATUS: lambda: p.status in wanted,
            Key.CHURN: lambda: p.churn in wanted,
            Key.TEAM: lambda: (p.team or "").lower() in wanted,
            Key.GROUP: lambda: any(g.lower() in wanted for g in p.groups),
            Key.ROLE: lambda: any(r.lower() in wanted for r in p.roles),
        }[term.key]()
    if isinstance(term, FlagTerm):
        return (p.verified if term.key == Key.VERIFIED else p.validated) == term.value
    if isinstance(term, LoginNeverTerm):
        return p.last_login_at is None
    assert isinstance(term, TimeTerm)
    value = p.last_seen_at if term.key == Key.SEEN else p.created_at
    lower, upper = term.bounds(now)
    return (
        value is not None and (lower is None or value >= lower) and (upper is None or value < upper)
    )


@pytest.fixture
def people(db: Session, org: Organization) -> list[Person]:
    demo.populate(db, organization=org, count=260, seed=42)
    rng = random.Random(1)
    odd = [
        ("Zoë", "O'Neil-Smith", "zoe.oneil@example.com"),
        ("Élodie", "Rosselló", "elodie_r+tag@example.org"),
        ("Ann", "Lee", "ann.lee@example.com"),
        ("Anna", "Leeds", "annaleeds@example.net"),
        ("Jo", "Ng", "jo@ng.example"),
    ]
    for first, last, email in odd:
        factories.make_user(db, org, first_name=first, last_name=last, email=email, password=None)
    users = db.scalars(
        select(User)
        .where(User.organization_id == org.id)
        .options(selectinload(User.team), selectinload(User.groups), selectinload(User.roles))
    ).all()
    for user in users:
        user.churn_level = rng.choice([None, "low", "medium", "high"])
    db.flush()
    return [
        Person(
            id=u.id,
            first_name=u.first_name,
            last_name=u.last_name,
            email=u.email,
            status=u.status,
            team=u.team.name if u.team else None,
            groups=frozenset(g.name for g in u.groups),
            roles=frozenset(r.name for r in u.roles),
            verified=u.email_verified_at is not None,
            validated=u.validated_at is not None,
            churn=u.churn_level,
            created_at=u.created_at,
            last_login_at=u.last_login_at,
            last_seen_at=u.last_seen_at,
        )
        for u in users
    ]


def sample_queries(people: list[Person]) -> Iterator[str]:
    """Hand-picked edge cases, then random mixes of every kind of term."""
    yield from [
        "",
        "ann",
        "Ann Lee",
        '"ann lee"',
        "an",
        "a",
        "z",
        "o'",
        "-",
        "@",
        "_",
        "zoë",
        "ÉLO",
        "rossell",
        "el",
        "example.net",
        "jo ng",
        "status:active",
        "status:pending,banned",
        "login:never",
        "login:never status:active",
        'team:"Support EU"',
        'team:"support eu",sales',
        'group:"Beta testers"',
        "group:vip,partners role:agent",
        "role:member verified:no",
        "validated:no churn:high",
        "churn:low,medium",
        "seen:>30d",
        "seen:<7d",
        "seen:>=2026-06-01 seen:<2026-09-01",
        "created:>2026-01-01",
        "created:<90d status:disabled",
    ]
    rng = random.Random(7)
    teams = sorted({p.team for p in people if p.team})
    groups = sorted({g for p in people for g in p.groups})
    roles = sorted({r for p in people for r in p.roles})
    makers = [
        lambda: rng.choice(people).email[rng.randrange(4) : rng.randrange(5, 9)],
        lambda: rng.choice(people).last_name[: rng.choice([1, 2])],
        lambda: "status:" + ",".join(rng.sample([s.value for s in UserStatus], rng.randint(1, 3))),
        lambda: f'team:"{rng.choice(teams)}"',
        lambda: f'group:"{rng.choice(groups)}"',
        lambda: f'role:"{rng.choice(roles)}"',
        lambda: rng.choice(["verified:yes", "verified:no", "validated:yes", "validated:no"]),
        lambda: "login:never",
        lambda: "churn:" + rng.choice(["low", "medium", "high"]),
        lambda: rng.choice(["seen:>30d", "seen:<14d", "seen:>90d", "created:>180d"]),
    ]
    for _ in range(40):
        yield " ".join(_quote_text(rng.choice(makers)()) for _ in range(rng.randint(1, 3)))


def _quote_text(term: str) -> str:
    if ":" in term and not term.startswith(tuple(k.value + ":" for k in Key)):
        return f'"{term}"'
    return term


def all_pages(client: TestClient, key: str, q: str, sort: str, limit: int = 37) -> list[dict]:
    items: list[dict] = []
    cursor = None
    while True:
        params = {"q": q, "sort": sort, "limit": limit} | ({"cursor": cursor} if cursor else {})
        response = client.get(
            "/api/v1/users", params=params, headers={"Authorization": f"Bearer {key}"}
        )
        assert response.status_code == 200, (q, response.text)
        page = response.json()
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return items


@pytest.fixture(params=["index", "lists", "sorted instead", "row by row", "time range"])
def text_strategy(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """On SQLite, users come from the index of their rarest term; or, when every term is
    common, are read in sort order and checked against each term's list of ids (or, when
    that runs long, the shortest list is sorted instead), or row by row; or, with lists,
    from the index of a time's range, sorted (builder.selection)."""
    if request.param != "index":
        monkeypatch.setattr(builder, "FEW", 0)
    if request.param in ("lists", "sorted instead"):
        monkeypatch.setattr(builder, "RANGE_SORTED_MOST", -1)
    if request.param == "sorted instead":
        monkeypatch.setattr(service, "READ_IN_ORDER_WITHIN", 0)
    if request.param == "row by row":
        monkeypatch.setattr(builder, "LISTED_MOST", 0)
        monkeypatch.setattr(builder, "TEXT_LISTED_MOST", 0)
    return str(request.param)


def test_every_query_selects_exactly_the_matching_people(
    client: TestClient, db: Session, org: Organization, people: list[Person], text_strategy: str
) -> None:
    key = factories.make_api_key(db, org)
    now = utcnow()
    answered = 0
    for q in sample_queries(people):
        expected = {p.id for p in people if matches(p, parse(q), now)}
        got = [int(u["id"]) for u in all_pages(client, key, q, "name")]
        assert len(got) == len(set(got)), q
        assert set(got) == expected, q
        answered += 0 < len(expected) < len(people)
    assert answered > 40, "most sample queries should select some people but not all"


def test_counts_per_status_agree_with_the_people(
    client: TestClient, db: Session, org: Organization, people: list[Person]
) -> None:
    key = factories.make_api_key(db, org)
    now = utcnow()
    for q in ["", "status:active", "an", "login:never", "verified:no", 'team:"Support EU"']:
        query = parse(q).without_key(Key.STATUS)
        chosen = [p for p in people if matches(p, query, now)]
        counts = client.get(
            "/api/v1/users/counts", params={"q": q}, headers={"Authorization": f"Bearer {key}"}
        ).json()
        exact = {"capped": False, "estimated": False}
        assert counts["all"] == {"count": len(chosen), **exact}, q
        for status in UserStatus:
            expected = sum(1 for p in chosen if p.status == status.value)
            assert counts["statuses"][status.value] == {"count": expected, **exact}, q
        without = sum(1 for p in chosen if p.last_login_at is None)
        assert counts["without_login"]["count"] == without, q


def _order(people: list[Person], sort: str) -> list[int]:
    field = sort.lstrip("-")
    descending = sort.startswith("-")
    low = datetime.min.replace(tzinfo=UTC)
    keys = {
        "name": lambda p: (p.first_name, p.last_name, p.id),
        "email": lambda p: (p.email.lower(),),
        "created": lambda p: (p.created_at, p.id),
        "seen": lambda p: (p.last_seen_at is not None, p.last_seen_at or low, p.id),
    }
    return [p.id for p in sorted(people, key=keys[field], reverse=descending)]


@pytest.mark.parametrize(
    "sort", ["name", "-name", "email", "-email", "created", "-created", "seen", "-seen"]
)
def test_each_sort_pages_through_everyone_in_order(
    client: TestClient, db: Session, org: Organization, people: list[Person], sort: str
) -> None:
    key = factories.make_api_key(db, org)
    got = [int(u["id"]) for u in all_pages(client, key, "", sort, limit=23)]
    assert got == _order(people, sort)


@pytest.mark.parametrize(
    "sort", ["name", "-name", "email", "-email", "created", "-created", "seen", "-seen"]
)
def test_a_query_pages_in_sort_order_however_its_people_are_found(
    client: TestClient,
    db: Session,
    org: Organization,
    people: list[Person],
    text_strategy: str,
    sort: str,
) -> None:
    key = factories.make_api_key(db, org)
    now = utcnow()
    by_id = {p.id: p for p in people}
    for q in (
        "an",
        "ann status:active",
        "login:never verified:yes",
        "group:vip churn:high",
        # several statuses: on SQLite one page per status, merged
        "status:pending,banned",
        "e status:active,disabled,trashed verified:yes",
    ):
        expected = [i for i in _order(people, sort) if matches(by_id[i], parse(q), now)]
        got = [int(u["id"]) for u in all_pages(client, key, q, sort, limit=7)]
        assert got == expected, (q, sort)


def test_paging_is_stable_while_people_are_added(
    client: TestClient, db: Session, org: Organization, people: list[Person]
) -> None:
    key = factories.make_api_key(db, org)
    headers = {"Authorization": f"Bearer {key}"}
    first = client.get("/api/v1/users", params={"limit": 50}, headers=headers).json()
    for first_name in ("Aaaa", "Mmmm", "Zzzz"):
        factories.make_user(db, org, first_name=first_name, password=None)
    seen = [int(u["id"]) for u in first["items"]]
    cursor = first["next_cursor"]
    while cursor:
        page = client.get(
            "/api/v1/users", params={"limit": 50, "cursor": cursor}, headers=headers
        ).json()
        seen.extend(int(u["id"]) for u in page["items"])
        cursor = page["next_cursor"]
    assert len(seen) == len(set(seen))
    assert {p.id for p in people} <= set(seen)


def test_a_bad_term_is_a_400_problem_naming_it(
    client: TestClient, db: Session, org: Organization
) -> None:
    key = factories.make_api_key(db, org)
    headers = {"Authorization": f"Bearer {key}"}
    for q, needle in (("ann colour:red", "colour:red"), ('team:"Nowhere"', "Nowhere")):
        for path in ("/api/v1/users", "/api/v1/users/counts"):
            response = client.get(path, params={"q": q}, headers=headers)
            assert response.status_code == 400
            body = response.json()
            assert body["code"] == "invalid_query"
            assert body["errors"][0]["field"] == "q"
            assert needle in body["errors"][0]["detail"]
