"""builder.selection counts each term's list once, as far as it may need to (SQLite): a
common term's list and a time's range were each counted up to FEW, then again up to
LISTED_MOST or RANGE_SORTED_MOST (issue 17: `mar seen:<1d`, 20,001 then 50,001)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import Connection, func, select
from sqlalchemy.orm import Session

from userdesk import demo
from userdesk.access.rules import Permission, system_actor
from userdesk.organizations.models import Organization
from userdesk.query import builder
from userdesk.users import service
from userdesk.users.models import User


@contextmanager
def counts_made(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter[int]]:
    """How many times each list (by identity) is counted inside the block."""
    made: Counter[int] = Counter()
    size, count_up_to = builder._size, builder._count_up_to

    def spied_size(db: Session, listed: Any, most: int, top_id: int | None) -> int:
        made[id(listed)] += 1
        return size(db, listed, most, top_id)

    def spied_count(db: Session, listed: Any, most: int) -> int:
        made[id(listed)] += 1
        return count_up_to(db, listed, most)

    with monkeypatch.context() as patched:
        patched.setattr(builder, "_size", spied_size)
        patched.setattr(builder, "_count_up_to", spied_count)
        yield made


# SQLite's lists and counts: PostgreSQL plans its pages for itself.
pytestmark = pytest.mark.only_on("sqlite")


@pytest.fixture
def people(db: Session, org: Organization) -> Organization:
    """Demo users to count."""
    demo.populate(db, organization=org, count=1_500, seed=5)
    db.flush()
    return org


@pytest.mark.parametrize(
    ("q", "listed_most"),
    [
        ("e seen:<7d", 100_000),  # a term checked against its list, its range read instead
        ("e seen:<7d", 0),  # no list: the range is not read, nor counted far
        ("e role:Agent seen:<30d", 100_000),
        ("role:Agent group:Trial", 100_000),
    ],
)
def test_each_terms_list_is_counted_once(
    db: Session,
    people: Organization,
    connection: Connection,
    monkeypatch: pytest.MonkeyPatch,
    q: str,
    listed_most: int,
) -> None:
    monkeypatch.setattr(builder, "FEW", 5)  # as at a million users: no list is short
    monkeypatch.setattr(builder, "LISTED_MOST", listed_most)
    for sort in ("name", "email", "-seen", None):
        with counts_made(monkeypatch) as made:
            found = service._selection(
                db,
                actor=system_actor(people.id),
                query=builder.parse_query(q),
                permission=Permission.USERS_READ,
                sort=service.SORTS[sort] if sort else None,
            )
        assert found.where
        assert made, (q, sort)
        assert max(made.values()) == 1, (q, sort, made)


@pytest.mark.parametrize(
    ("q", "cap"),
    [
        # The range alone is checked on each row (the status is SQLite's to plan): counted
        # (with the status) as far as it may be read first, a page costing fewer rows so
        # than a read in sort order (builder.RANGE_FIRST_MOST; 0 here: computed below).
        ("seen:<30d status:active", 0),
        # Another term checked on each row too: together they may match few, and the
        # range may be read instead.
        ("seen:<30d verified:yes", builder.RANGE_SORTED_MOST),
    ],
)
def test_a_range_is_counted_as_far_as_it_may_be_read_instead(
    db: Session,
    people: Organization,
    connection: Connection,
    monkeypatch: pytest.MonkeyPatch,
    q: str,
    cap: int,
) -> None:
    """Without a list to check, a range is counted far only when another term is checked
    on each row beside it."""
    monkeypatch.setattr(builder, "FEW", 5)
    caps: list[int] = []
    size, count_up_to = builder._size, builder._count_up_to

    def spied_size(db: Session, listed: Any, most: int, top_id: int | None) -> int:
        caps.append(most)
        return size(db, listed, most, top_id)

    def spied_count(db: Session, listed: Any, most: int) -> int:
        caps.append(most)
        return count_up_to(db, listed, most)

    monkeypatch.setattr(builder, "_size", spied_size)
    monkeypatch.setattr(builder, "_count_up_to", spied_count)
    found = service._selection(
        db,
        actor=system_actor(people.id),
        query=builder.parse_query(q),
        permission=Permission.USERS_READ,
        sort=service.SORTS["name"],
    )
    if cap == 0:
        top_id = db.scalar(select(func.max(User.id)))
        assert top_id is not None
        cap = min(builder.RANGE_FIRST_MOST, math.isqrt(builder.PAGE_ROWS * top_id))
    assert caps == [cap]
    assert not found.few
    assert (found.instead is not None) is (cap == builder.RANGE_SORTED_MOST)
