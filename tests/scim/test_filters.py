"""SCIM filters as SQL, compared with a plain evaluation of the same filter in Python over a
few hundred users (every operator, and/or/not, value paths), on both databases."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from scim2_models.path import (
    CompareOperator,
    Comparison,
    FilterNode,
    LogicalExpr,
    LogicalOperator,
    Not,
    Present,
    ValuePath,
)
from sqlalchemy.orm import Session

from tests.scim.conftest import Scim
from userdesk.access.rules import Actor, Grant
from userdesk.organizations.models import Organization
from userdesk.scim import filters
from userdesk.scim import users as scim_users
from userdesk.scim.tokens import ACTOR_PREFIX, PROVISIONING
from userdesk.users.models import User

GIVEN = ["ann", "Anna", "bob", "Bea", "carl", "Cleo", "dan", "", "eve", "Ann-Marie"]
FAMILY = ["lee", "Lane", "smith", "Smyth", "o_hara", "Oak", "", "ward", "west", "100%"]
STATUSES = ["active", "active", "active", "pending", "disabled", "banned", "trashed", "deleted"]
BASE = datetime(2025, 1, 1, tzinfo=UTC)


@pytest.fixture
def people(db: Session, org: Organization) -> list[User]:
    """300 users with names, emails, externalIds, statuses and creation times that overlap."""
    chance = random.Random(21)
    made = []
    for n in range(300):
        given, family = chance.choice(GIVEN), chance.choice(FAMILY)
        email = f"{given or 'x'}.{n}@{chance.choice(['example.com', 'Corp.io', 'mail.org'])}"
        user = User(
            organization_id=org.id,
            email=email,
            email_normalized=email.lower(),
            first_name=given,
            last_name=family,
            status=chance.choice(STATUSES),
            external_id=chance.choice([None, f"ext-{n}", f"EXT-{n % 7}"]),
            created_at=BASE + timedelta(hours=chance.randrange(0, 24 * 60)),
        )
        db.add(user)
        made.append(user)
    db.flush()
    return made


def actor_for(org: Organization) -> Actor:
    return Actor(org.id, None, None, ACTOR_PREFIX + "tests", (Grant(frozenset(PROVISIONING)),))


def _value(user: User, attr: str, sub: str | None, within: str | None) -> Any:
    """The value a SCIM client sees, from the row, independently of userdesk.scim.filters."""
    key = (within or attr).lower(), (attr if within else sub)
    key = key[0], key[1].lower() if key[1] else None
    return {
        ("username", None): user.email,
        ("emails", None): user.email,
        ("emails", "value"): user.email,
        ("emails", "type"): "work",
        ("emails", "primary"): True,
        ("externalid", None): user.external_id,
        ("name", "givenname"): user.first_name or None,
        ("name", "familyname"): user.last_name or None,
        ("active", None): user.status in ("active", "pending"),
        ("meta", "created"): user.created_at,
        ("id", None): str(user.id),
    }.get(key)


def _matches(node: FilterNode, user: User, within: str | None = None) -> bool:
    if isinstance(node, LogicalExpr):
        results = [_matches(term, user, within) for term in node.terms]
        return all(results) if node.op is LogicalOperator.and_ else any(results)
    if isinstance(node, Not):
        return not _matches(node.expr, user, within)
    if isinstance(node, ValuePath):
        return _matches(node.val_filter, user, node.attr_path.attr)
    assert isinstance(node, Present | Comparison)
    path = node.attr_path
    value = _value(user, path.attr, path.sub_attr, within)
    if isinstance(node, Present):
        return value is not None
    return _compare(value, node.op, node.value, case_exact=path.attr.lower() == "externalid")


def _compare(have: Any, op: CompareOperator, want: Any, *, case_exact: bool) -> bool:
    if have is None:
        return op is CompareOperator.ne
    if isinstance(have, datetime):
        want = datetime.fromisoformat(want)
    elif isinstance(have, str) and not case_exact:
        have, want = have.lower(), want.lower()
    return {
        CompareOperator.eq: lambda: have == want,
        CompareOperator.ne: lambda: have != want,
        CompareOperator.co: lambda: want in have,
        CompareOperator.sw: lambda: have.startswith(want),
        CompareOperator.ew: lambda: have.endswith(want),
        CompareOperator.gt: lambda: have > want,
        CompareOperator.ge: lambda: have >= want,
        CompareOperator.lt: lambda: have < want,
        CompareOperator.le: lambda: have <= want,
    }[op]()


FILTERS = [
    'userName eq "ANN.0@example.com"',
    'userName ne "ann.0@example.com"',
    'userName co "corp"',
    'userName sw "anna."',
    'userName ew ".ORG"',
    "userName pr",
    'name.givenName eq "ann"',
    'name.givenName ne "ann"',
    'name.givenName co "NN"',
    'name.givenName sw "c"',
    'name.givenName ew "a"',
    "name.givenName pr",
    'name.familyName sw "sm"',
    'name.familyName co "_"',
    'name.familyName co "%"',
    'name.familyName gt "m"',
    'name.familyName ge "oak"',
    'name.familyName lt "m"',
    'name.familyName le "lee"',
    "name.familyName pr",
    'externalId eq "EXT-3"',
    'externalId eq "ext-3"',
    'externalId sw "EXT"',
    'externalId co "xt-1"',
    'externalId ew "-1"',
    'externalId ne "EXT-3"',
    "externalId pr",
    "active eq true",
    "active eq false",
    "active ne true",
    'meta.created gt "2025-02-01T00:00:00+00:00"',
    'meta.created le "2025-01-15T12:00:00+00:00"',
    'meta.created ge "2025-02-01T00:00:00+00:00" and meta.created lt "2025-02-10T00:00:00+00:00"',
    'emails[type eq "work"].value co "mail"',
    'emails[type eq "work" and value sw "bob"]',
    'emails[type eq "home"]',
    'emails.value ew "example.com"',
    'emails[primary eq true and value co ".1"]',
    'name.givenName eq "ann" or name.givenName eq "bob"',
    'name.givenName sw "a" and active eq true',
    'not (name.givenName sw "a")',
    'not (externalId pr) and not (name.familyName eq "lee")',
    '(name.givenName eq "eve" or name.familyName eq "west") and not (active eq false)',
    'userName co "1" and (name.familyName sw "s" or name.familyName sw "o")'
    ' or externalId eq "EXT-0"',
    "title pr",
    'title eq "x"',
    'title ne "x"',
]


@pytest.mark.parametrize("expression", FILTERS)
def test_a_filter_finds_what_a_plain_evaluation_finds(
    db: Session, org: Organization, people: list[User], expression: str
) -> None:
    """The SQL of the filter selects exactly the users a Python evaluation selects."""
    page = scim_users.search(db, actor=actor_for(org), filter_=expression)
    tree = filters.parse(expression)
    expected = {user.id for user in people if user.status != "deleted" and _matches(tree, user)}
    assert {user.id for user in page.users} == expected
    assert page.total == len(expected)


def test_the_filters_between_them_select_and_leave_out_users(
    db: Session, org: Organization, people: list[User]
) -> None:
    """The comparisons above are not vacuous: most select some users and leave out others."""
    tree_counts = [
        sum(_matches(filters.parse(expression), user) for user in people) for expression in FILTERS
    ]
    assert sum(0 < count < len(people) for count in tree_counts) >= len(FILTERS) - 8


@pytest.mark.parametrize(
    ("expression", "why"),
    [
        ('nickname eq "x" and', "syntax"),
        ('colour eq "red"', "not an attribute"),
        ('name.middle eq "x"', "not an attribute"),
        ("active gt true", "active compares"),
        ('meta.created gt "yesterday"', "not a dateTime"),
        ("userName eq 5", "must be a string"),
    ],
)
def test_a_bad_filter_is_a_400_invalid_filter(scim: Scim, expression: str, why: str) -> None:
    response = scim.get("/Users", filter=expression)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["scimType"] == "invalidFilter"
    assert response.headers["content-type"].startswith("application/scim+json")


def test_user_name_eq_is_read_from_the_email_index(
    db: Session, org: Organization, people: list[User], client: TestClient
) -> None:
    """The SQL of `userName eq` is a lookup of the (organization, email) unique index."""
    from sqlalchemy import select

    where = filters.users_where('userName eq "Ann.0@Example.com"')
    query = select(User.id).where(User.organization_id == org.id, where)
    compiled = query.compile(db.get_bind(), compile_kwargs={"literal_binds": True})
    dialect = db.get_bind().dialect.name
    prefix = "EXPLAIN QUERY PLAN " if dialect == "sqlite" else "EXPLAIN "
    from sqlalchemy import text

    plan = " ".join(str(row) for row in db.execute(text(prefix + str(compiled))))
    if dialect == "sqlite":
        assert "email_normalized" in plan or "uq_users" in plan, plan
        assert "SCAN users" not in plan, plan
