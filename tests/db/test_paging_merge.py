"""Pages of disjoint sets of rows merged into one page, as the database orders them."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from userdesk.db.paging import decode_cursor, merge_pages
from userdesk.users.service import SORTS

# The columns the sorts read, in a row of these positions.
COLUMNS = [SORTS["name"].columns[2], *SORTS["name"].columns[:2]]  # id, first, last
COLUMNS += [SORTS["email"].columns[0], SORTS["created"].columns[0], SORTS["seen"].columns[0]]
COLUMNS += [SORTS["churn"].columns[0]]
START = datetime(2026, 1, 1, tzinfo=UTC)


def rows(count: int, seed: int) -> list[tuple]:
    rng = random.Random(seed)
    names = ["Ann", "anna", "Émile", "Zoë", "bob", "Bob", "Ω"]
    return [
        (
            seed * 1000 + i,
            rng.choice(names),
            rng.choice(names),
            f"{seed}-{i}@example.com",
            START + timedelta(minutes=rng.randrange(50)),
            None if rng.random() < 0.3 else START + timedelta(minutes=rng.randrange(50)),
            None if rng.random() < 0.3 else rng.randrange(20) / 20,
        )
        for i in range(count)
    ]


def database_order(sort: str, found: list[tuple]) -> list[tuple]:
    """The order of fetch_page: NULL the smallest value, text by code point."""
    key = SORTS[sort]
    positions = [COLUMNS.index(c) for c in key.columns]

    def order(row: tuple) -> tuple:
        return tuple((row[i] is not None, row[i]) for i in positions)

    return sorted(found, key=order, reverse=key.descending)


@pytest.mark.parametrize("sort", sorted(SORTS))
@pytest.mark.parametrize("limit", [1, 5, 17, 40])
def test_merged_pages_are_the_first_page_of_the_union(sort: str, limit: int) -> None:
    parts = [rows(count, seed) for seed, count in enumerate([0, 3, 12, 30], start=1)]
    pages = []
    for part in parts:
        ordered = database_order(sort, part)
        pages.append((ordered[:limit], "more" if len(ordered) > limit else None))
    got, cursor = merge_pages(COLUMNS, SORTS[sort], pages, limit=limit)
    everyone = database_order(sort, [row for part in parts for row in part])
    assert got == everyone[:limit]
    assert (cursor is not None) == (len(everyone) > limit)
    if cursor is not None:
        key = SORTS[sort]
        last = [got[-1][COLUMNS.index(c)] for c in key.columns]
        assert decode_cursor(key, cursor) == last


def test_a_part_with_more_rows_gives_a_cursor_though_the_merge_has_just_a_page() -> None:
    part = database_order("name", rows(6, 1))
    got, cursor = merge_pages(COLUMNS, SORTS["name"], [(part[:3], "more"), ([], None)], limit=3)
    assert got == part[:3]
    assert cursor is not None
