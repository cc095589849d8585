"""The Users list's figures for a query on a custom field: counted block by block from the
index of values (users.service._field_counts), exact when every block is read, the same
as a brute-force count over the same people on each database; estimated and labelled as
such when stopped early; within the reader's reach."""

from __future__ import annotations

import random
from typing import Any

import pytest
from sqlalchemy.orm import Session

from tests import factories
from tests.api.test_query_custom_fields import (  # noqa: F401 - fixtures
    expected,
    held,
)
from tests.api.test_query_exact import Person, matches, people  # noqa: F401 - fixtures
from userdesk.access import service as access
from userdesk.access.rules import system_actor
from userdesk.db.base import utcnow
from userdesk.organizations.models import Organization
from userdesk.query import builder
from userdesk.query.rules import Key, Query, TextTerm, parse
from userdesk.users import fields
from userdesk.users import service as users
from userdesk.users.field_schemas import UserFieldUpdate
from userdesk.users.rules import UserStatus
from userdesk.users.schemas import UserCounts

QUERIES = (
    "plan:pro",
    "plan:free,team",
    "seats:>10",
    "seats:>=5 seats:<=20",
    "since:<2025-01-01",
    'country:"new zealand"',
    "has:langs",
    "langs:en,fr",
    "beta:no status:active",
    "plan:pro seats:>5",
    "seats:>10 verified:yes",
    "has:since an",
    "login:never has:plan",
)


def _exact(
    counts: UserCounts,
    people: list[Person],  # noqa: F811
    held: dict[int, dict[str, Any]],  # noqa: F811
    q: str,
) -> None:
    wanted = expected(people, held, parse(q).without_key(Key.STATUS))
    chosen = [p for p in people if p.id in wanted]
    assert counts.all.count == len(chosen), q
    assert not counts.all.estimated, q
    assert not counts.all.capped, q
    for status in UserStatus:
        figure = counts.statuses[status.value]
        assert figure.count == sum(1 for p in chosen if p.status == status.value), (q, status)
    assert counts.without_login.count == sum(1 for p in chosen if p.last_login_at is None), q


def test_counts_on_custom_fields_are_exact_per_status(
    db: Session,
    org: Organization,
    people: list[Person],  # noqa: F811
    held: dict[int, dict[str, Any]],  # noqa: F811
) -> None:
    """Every figure of each query (the status term left out), as a brute-force filter
    counts it (the admin counting has no custom value: no query here finds them)."""
    admin = factories.make_admin(db, org, password=None)
    actor = access.actor_for_user(db, admin)
    for q in QUERIES:
        _exact(users.count_users(db, actor=actor, q=q), people, held, q)


def test_a_count_stopped_early_is_an_estimate_labelled_so(
    db: Session,
    org: Organization,
    people: list[Person],  # noqa: F811
    held: dict[int, dict[str, Any]],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Stopped at its cap or out of time, a count scales what the blocks read found, and
    says so: a figure is estimated, or "at least" when found too rarely to scale. (The
    common count of so few people is exact within its time, cap or not: these figures
    are the blocks'.)"""
    monkeypatch.setattr(users, "_FIELD_BLOCK_IDS", 1)  # these few people in 64 blocks
    admin = factories.make_admin(db, org, password=None)
    actor = access.actor_for_user(db, admin)
    counts = users.count_users(db, actor=actor, q="has:plan", cap=1)
    figures = [counts.all, counts.without_login, *counts.statuses.values()]
    assert all(f.estimated or f.capped for f in figures)
    assert counts.all.count >= 1
    # Out of time at once: the first batch of blocks alone is read (a few ids of many),
    # never an exact figure.
    exact = users.count_users(db, actor=actor, q="has:plan", field_within=60)
    assert not exact.all.estimated
    assert not exact.all.capped
    for late in (
        users.count_users(db, actor=actor, q="has:plan", exact_within=0, sample_within=0),
        users.count_users(db, actor=actor, q="has:plan", field_within=0),
    ):
        figures = [late.all, late.without_login, *late.statuses.values()]
        assert all(f.estimated or f.capped for f in figures)
        assert late.all.count < exact.all.count


@pytest.mark.parametrize("seed", [1, 2])
def test_random_queries_count_as_they_list(
    db: Session,
    org: Organization,
    people: list[Person],  # noqa: F811
    held: dict[int, dict[str, Any]],  # noqa: F811
    seed: int,
) -> None:
    """A custom term joined with another (custom, built-in or free text) counts what
    the brute-force filter finds, whichever term the count reads by."""
    admin = factories.make_admin(db, org, password=None)
    actor = access.actor_for_user(db, admin)
    rng = random.Random(seed)
    others = ["status:banned", "verified:no", "an", "login:never", "has:country", "seats:<3"]
    for _ in range(8):
        q = f"{rng.choice(QUERIES)} {rng.choice(others)}"
        _exact(users.count_users(db, actor=actor, q=q), people, held, q)


@pytest.mark.parametrize("block_ids", [1, 4096], ids=["blocks-of-one", "one-block"])
@pytest.mark.parametrize(
    ("text_counted_few", "pg_text_listed_most"),
    [(0, -1), (0, builder.PG_TEXT_LISTED_MOST), (builder.TEXT_COUNTED_FEW, -1)],
    ids=["text-walked", "text-listed", "few"],
)
def test_free_text_counts_whoever_a_searchable_field_or_the_search_text_holds_it_for(
    db: Session,
    org: Organization,
    people: list[Person],  # noqa: F811
    held: dict[int, dict[str, Any]],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    block_ids: int,
    text_counted_few: int,
    pg_text_listed_most: int,
) -> None:
    """With `country` searchable, free text of three characters or more counts the people
    whose search text holds it or whose country it starts, each once (some have both),
    per status, as a brute-force filter does: alone, with other terms, read in many
    blocks or in one (on PostgreSQL, the search text tested row by row or listed by its
    index), or (few may hold it) from its lists."""
    monkeypatch.setattr(users, "_FIELD_BLOCK_IDS", block_ids)
    monkeypatch.setattr(builder, "TEXT_COUNTED_FEW", text_counted_few)
    monkeypatch.setattr(builder, "PG_TEXT_LISTED_MOST", pg_text_listed_most)
    system = system_actor(org.id, "tests")
    country = next(f for f in fields.list_fields(db, actor=system) if f.key == "country")
    fields.update_field(
        db, actor=system, field_id=country.id, data=UserFieldUpdate(searchable=True)
    )
    actor = access.actor_for_user(db, factories.make_admin(db, org, password=None))
    now = utcnow()
    both = 0
    for q in ("fra", "new", "cha", "côte", "new zealand", "fra verified:yes", "cha an"):
        query = parse(q)
        wanted = [
            p
            for p in people
            if all(
                matches(p, Query((t,)), now)
                or (
                    isinstance(t, TextTerm)
                    and len(t.text) >= 3
                    and str(held[p.id].get("country", "")).lower().startswith(t.text.lower())
                )
                for t in query.terms
            )
        ]
        both += sum(
            1
            for p in wanted
            if matches(p, query, now)
            and str(held[p.id].get("country", "")).lower().startswith(q.split()[0])
        )
        # All the count's time for each batch of blocks, so that every block is read.
        counts = users.count_users(db, actor=actor, q=q, field_within=users.COUNT_SAMPLE_WITHIN)
        assert counts.all.count == len(wanted), q
        assert not counts.all.estimated, q
        assert not counts.all.capped, q
        for status in UserStatus:
            assert counts.statuses[status.value].count == sum(
                1 for p in wanted if p.status == status.value
            ), (q, status)
        assert counts.without_login.count == sum(1 for p in wanted if p.last_login_at is None)
    assert both, "someone should have the text in both places"
