"""Custom fields in the query language answer exactly: a few hundred people with random
attributes, many random queries mixing custom and built-in terms, each compared with a
brute-force filter over the same people, through the API's pages and counts, on each
database and each way SQLite's planner may find them."""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests import factories
from tests.api.test_query_exact import (  # noqa: F401 - fixtures
    Person,
    all_pages,
    matches,
    people,
    text_strategy,
)
from userdesk.access.rules import system_actor
from userdesk.db.base import utcnow
from userdesk.organizations.models import Organization
from userdesk.query import builder
from userdesk.query.rules import FieldTerm, HasTerm, Key, Query, Term, TextTerm, parse
from userdesk.users import attributes, fields
from userdesk.users.attributes import Party
from userdesk.users.field_schemas import UserFieldCreate, UserFieldUpdate
from userdesk.users.models import User
from userdesk.users.rules import UserStatus

SPECS: list[dict[str, Any]] = [
    {"key": "plan", "type": "choice", "options": ["Free", "Pro", "Team"]},
    {"key": "seats", "type": "number"},
    {"key": "beta", "type": "boolean"},
    {"key": "since", "type": "date"},
    {"key": "country", "type": "text"},
    {"key": "langs", "type": "choices", "options": ["en", "fr", "de", "mi"]},
    {"key": "billing", "type": "email"},
]
TYPES = {s["key"]: s["type"] for s in SPECS}
# "50%_Off": LIKE's wildcards, which a term must match as themselves.
COUNTRIES = ["New Zealand", "France", "new zealand", "Chad", "Côte d'Ivoire", "50%_Off"]
DAY0 = date(2024, 1, 1)


def _random_value(rng: random.Random, key: str) -> Any:
    return {
        "plan": lambda: rng.choice(["Free", "Pro", "Team"]),
        "seats": lambda: rng.choice([1, 5, 10, 10, 11, 20, 2.5, 0, -3, 150]),
        "beta": lambda: rng.random() < 0.5,
        "since": lambda: (DAY0 + timedelta(days=rng.randrange(900))).isoformat(),
        "country": lambda: rng.choice(COUNTRIES),
        "langs": lambda: rng.sample(["en", "fr", "de", "mi"], rng.randint(0, 3)),
        "billing": lambda: f"{rng.choice(['a', 'b'])}@{rng.choice(['x', 'y'])}.example",
    }[key]()


@pytest.fixture
def held(db: Session, org: Organization, people: list[Person]) -> dict[int, dict[str, Any]]:  # noqa: F811
    """Each person's attributes (about a third of the values missing)."""
    actor = system_actor(org.id, "tests")
    for spec in SPECS:
        fields.create_field(
            db, actor=actor, data=UserFieldCreate(label=spec["key"].title(), **spec)
        )
    rng = random.Random(22)
    found: dict[int, dict[str, Any]] = {}
    for person in people:
        values = {k: _random_value(rng, k) for k in TYPES if rng.random() < 0.66}
        checked = attributes.checked(db, organization_id=org.id, values=values, party=Party.SYSTEM)
        attributes.write(db, db.get_one(User, person.id), checked)
        found[person.id] = {k: v for k, v in checked.items() if v not in (None, [])}
    db.flush()
    return found


def _field_matches(attrs: dict[str, Any], term: FieldTerm | HasTerm) -> bool:
    if isinstance(term, HasTerm):
        return term.field in attrs
    value = attrs.get(term.key)
    if value is None:
        return False
    kind = TYPES[term.key]
    if kind in ("text", "choice", "email"):
        return value.lower() in {v.lower() for v in term.values}
    if kind == "choices":
        return bool({v.lower() for v in value} & {v.lower() for v in term.values})
    if kind == "boolean":
        return value is (term.values[0].lower() in ("yes", "true"))
    given = [float(v) if kind == "number" else date.fromisoformat(v) for v in term.values]
    mine = float(value) if kind == "number" else date.fromisoformat(value)
    if term.op == "=":
        return mine in given
    return {
        ">": mine > given[0],
        ">=": mine >= given[0],
        "<": mine < given[0],
        "<=": mine <= given[0],
    }[term.op]


def expected(
    people: list[Person],  # noqa: F811
    held: dict[int, dict[str, Any]],
    query: Query,
) -> set[int]:
    now = utcnow()
    custom = [t for t in query.terms if isinstance(t, FieldTerm | HasTerm)]
    built_in = Query(tuple(t for t in query.terms if t not in custom))
    return {
        p.id
        for p in people
        if matches(p, built_in, now) and all(_field_matches(held[p.id], t) for t in custom)
    }


def _custom_term(rng: random.Random) -> str:
    key = rng.choice(list(TYPES))
    kind = TYPES[key]
    if rng.random() < 0.15:
        return f"has:{key}"
    if kind == "choice":
        return "plan:" + ",".join(rng.sample(["free", "Pro", "TEAM"], rng.randint(1, 2)))
    if kind == "choices":
        return "langs:" + ",".join(rng.sample(["en", "FR", "de", "mi"], rng.randint(1, 2)))
    if kind == "boolean":
        return f"beta:{rng.choice(['yes', 'no', 'true', 'false'])}"
    if kind == "text":
        return f'country:"{rng.choice(COUNTRIES).upper()}"'
    if kind == "email":
        return f"billing:{rng.choice(['a', 'b'])}@x.example"
    op = rng.choice(["", ">", ">=", "<", "<="])
    if kind == "number":
        return f"seats:{op}{rng.choice(['10', '0', '2.5', '-1', '150', '11'])}"
    return f"since:{op}{(DAY0 + timedelta(days=rng.randrange(-10, 910))).isoformat()}"


def sample_queries(people: list[Person]) -> list[str]:  # noqa: F811
    fixed = [
        "plan:pro",
        "seats:>10",
        "seats:10",
        "seats:>=10 seats:<=20",
        "since:<2025-01-01",
        'country:"New Zealand"',
        "has:country",
        "has:langs langs:mi",
        "beta:no status:active",
        "plan:free,team verified:yes",
        "an plan:pro",
    ]
    rng = random.Random(5)
    teams = sorted({p.team for p in people if p.team})
    built_in = [
        lambda: "status:" + rng.choice([s.value for s in UserStatus]),
        lambda: rng.choice(["verified:yes", "validated:no", "login:never"]),
        lambda: f'team:"{rng.choice(teams)}"',
        lambda: rng.choice(people).last_name[:2],
        lambda: "seen:<30d",
    ]
    mixed = []
    for _ in range(45):
        terms = [_custom_term(rng) for _ in range(rng.randint(1, 2))]
        terms += [rng.choice(built_in)() for _ in range(rng.randint(0, 2))]
        rng.shuffle(terms)
        mixed.append(" ".join(terms))
    return fixed + mixed


def test_every_custom_field_query_selects_exactly_the_matching_people(
    client: TestClient,
    db: Session,
    org: Organization,
    people: list[Person],  # noqa: F811
    held: dict[int, dict[str, Any]],
    text_strategy: str,  # noqa: F811
) -> None:
    key = factories.make_api_key(db, org)
    some = 0
    for q in sample_queries(people):
        wanted = expected(people, held, parse(q))
        got = [int(u["id"]) for u in all_pages(client, key, q, "name", limit=41)]
        assert len(got) == len(set(got)), q
        assert set(got) == wanted, q
        some += 0 < len(wanted) < len(people)
    assert some > 30, "most sample queries should select some people but not all"


@pytest.mark.parametrize("sort", ["email", "-created", "seen"])
def test_custom_field_queries_page_in_sort_order(
    client: TestClient,
    db: Session,
    org: Organization,
    people: list[Person],  # noqa: F811
    held: dict[int, dict[str, Any]],
    sort: str,
) -> None:
    key = factories.make_api_key(db, org)
    for q in ("plan:pro", "seats:>5 status:active", "has:since an"):
        wanted = expected(people, held, parse(q))
        got = [int(u["id"]) for u in all_pages(client, key, q, sort, limit=9)]
        assert set(got) == wanted, (q, sort)
        assert len(got) == len(wanted), (q, sort)


def test_counts_per_status_use_the_same_filter(
    client: TestClient,
    db: Session,
    org: Organization,
    people: list[Person],  # noqa: F811
    held: dict[int, dict[str, Any]],
) -> None:
    key = factories.make_api_key(db, org)
    by_id = {p.id: p for p in people}
    for q in ("plan:pro", "seats:>10 beta:yes", "has:langs", "status:active country:france"):
        query = parse(q).without_key(Key.STATUS)
        chosen = [by_id[i] for i in expected(people, held, query)]
        counts = client.get(
            "/api/v1/users/counts", params={"q": q}, headers={"Authorization": f"Bearer {key}"}
        ).json()
        assert counts["all"]["count"] == len(chosen), q
        for status in UserStatus:
            count = sum(1 for p in chosen if p.status == status.value)
            assert counts["statuses"][status.value]["count"] == count, (q, status)


@pytest.mark.parametrize(
    ("q", "words"),
    [
        ("colour:red", "Unknown filter 'colour:red'"),
        ("seats:many", "'many' in 'seats:many' is not a number"),
        ("seats:>x", "is not a number"),
        ("since:yesterday", "is not a date"),
        ("since:>2025-13-01", "is not a date"),
        ("plan:gold", "'gold' is not a choice of plan"),
        ("beta:maybe", "beta is yes or no"),
        ("country:>b", "compared with = only"),
        ("has:colour", "Unknown filter 'has:colour'"),
        ("has:", "needs a value"),
        ("a" * 41 + ":x", "Unknown filter"),
        ("sort:name", "Unknown filter"),
        ("seats:", "needs a value"),
        ("seats:>", "takes one value"),
        ("seats:>1,2", "takes one value"),
    ],
)
def test_a_bad_field_or_value_is_a_400_naming_it(
    client: TestClient,
    db: Session,
    org: Organization,
    held: dict[int, dict[str, Any]],
    q: str,
    words: str,
) -> None:
    key = factories.make_api_key(db, org)
    headers = {"Authorization": f"Bearer {key}"}
    for path in ("/api/v1/users", "/api/v1/users/counts"):
        answer = client.get(path, params={"q": q}, headers=headers)
        assert answer.status_code == 400, (q, answer.text)
        assert words in answer.json()["detail"], (q, answer.json())


def test_terms_print_back_as_they_parse() -> None:
    for q in ("plan:pro,team", "seats:>10", 'country:"New Zealand"', "has:company"):
        parsed = parse(q)
        assert parse(str(parsed)) == parsed
        term: Term = parsed.terms[0]
        assert isinstance(term, FieldTerm | HasTerm)


@pytest.mark.parametrize("listed_most", [5_000, 0], ids=["listed", "looked-up"])
def test_free_text_also_finds_the_start_of_a_searchable_field(
    client: TestClient,
    db: Session,
    org: Organization,
    people: list[Person],  # noqa: F811
    held: dict[int, dict[str, Any]],
    text_strategy: str,  # noqa: F811
    listed_most: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With `country` marked searchable, a free-text term matches the search text as
    before, or (a term of three characters or more) the start of a person's country (case
    ignored); with it unmarked, only the search text. Compared with a brute-force filter,
    alone and with other terms; the values starting with the term listed once, or (more
    than FIELD_TEXT_LISTED_MOST: here any) looked up for each user."""
    monkeypatch.setattr(builder, "FIELD_TEXT_LISTED_MOST", listed_most)
    actor = system_actor(org.id, "tests")
    country = next(f for f in fields.list_fields(db, actor=actor) if f.key == "country")
    fields.update_field(db, actor=actor, field_id=country.id, data=UserFieldUpdate(searchable=True))
    key = factories.make_api_key(db, org)
    now = utcnow()

    def wanted(q: str) -> set[int]:
        query = parse(q)
        found = set()
        for p in people:
            value = str(held[p.id].get("country", "")).lower()
            if all(
                matches(p, Query((t,)), now)
                or (
                    isinstance(t, TextTerm)
                    and len(t.text) >= 3
                    and value.startswith(t.text.lower())
                )
                for t in query.terms
            ):
                found.add(p.id)
        return found

    rng = random.Random(9)
    queries = ["new zea", "NEW", "côte", "ch", "c", "fra ann", "an new", "new status:active"]
    queries += ["50%_o", "50%", "5%_", "0%_off"]
    queries += [rng.choice(COUNTRIES)[: rng.randint(1, 6)] for _ in range(8)]
    by_country = 0
    for q in queries:
        expected_ids = wanted(q)
        got = [int(u["id"]) for u in all_pages(client, key, q, "name", limit=41)]
        assert len(got) == len(set(got)), q
        assert set(got) == expected_ids, q
        plain = {p.id for p in people if matches(p, parse(q), now)}
        by_country += bool(expected_ids - plain)
    assert by_country >= 4, "most terms should find someone by country alone"
    counts = client.get(
        "/api/v1/users/counts", params={"q": "new zea"}, headers={"Authorization": f"Bearer {key}"}
    ).json()
    assert counts["all"]["count"] == len(wanted("new zea"))
    fields.update_field(
        db, actor=actor, field_id=country.id, data=UserFieldUpdate(searchable=False)
    )
    unmarked = [int(u["id"]) for u in all_pages(client, key, "new zea", "name")]
    assert set(unmarked) == {p.id for p in people if matches(p, parse("new zea"), now)}
