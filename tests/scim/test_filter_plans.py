"""The SQL of the SCIM filters an identity provider sends most is read from an index:
`userName eq` from (organization_id, email_normalized), `name.familyName eq` and `sw` from
(organization_id, lower(last_name)) (migration 0030), whether paged by index or cursor.
SQLite's EXPLAIN QUERY PLAN, PostgreSQL's EXPLAIN (sequential scans priced out, so that
the plan says whether the index can answer at all, at this test's few thousand rows)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import Connection, event, select
from sqlalchemy.orm import Session

from tests import factories
from userdesk import demo
from userdesk.access.rules import system_actor
from userdesk.organizations.models import Organization
from userdesk.scim import filters
from userdesk.scim import users as scim_users
from userdesk.users.models import User

INDEX = "ix_users_search_last_name_lower"


@pytest.fixture
def people(db: Session, org: Organization) -> Organization:
    demo.populate(db, organization=org, count=2_000, seed=5)
    return org


@contextmanager
def user_reads(db: Session) -> Iterator[list[tuple[str, Any]]]:
    """The statements reading users sent inside, with their parameters."""
    connection = db.connection()
    seen: list[tuple[str, Any]] = []

    def note(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "FROM users" in statement:
            seen.append((statement, parameters))

    event.listen(connection, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(connection, "before_cursor_execute", note)


def plan(connection: Connection, statement: str, parameters: Any) -> str:
    if connection.dialect.name == "sqlite":
        rows = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
        return "\n".join(str(row[3]) for row in rows)
    connection.exec_driver_sql("SAVEPOINT plan; SET LOCAL enable_seqscan = off")
    try:
        rows = connection.exec_driver_sql(f"EXPLAIN {statement}", parameters)
        return "\n".join(str(row[0]) for row in rows)
    finally:
        connection.exec_driver_sql("ROLLBACK TO SAVEPOINT plan; RELEASE SAVEPOINT plan")


def _plans(db: Session, org: Organization, expression: str) -> tuple[list[str], set[int]]:
    """The plans of every users statement of an index page and of a cursor page of
    EXPRESSION (the count, the page, the rows), and the ids of the users they found."""
    actor = system_actor(org.id, "Okta")
    with user_reads(db) as seen:
        page = scim_users.search(db, actor=actor, filter_=expression, count=50)
        cursored = scim_users.cursor_search(
            db,
            actor=actor,
            filter_=expression,
            cursor="",
            count=50,
            sort_by=None,
            descending=False,
            cursoring=scim_users.Cursoring("key", 0.0),
        )
    assert [u.id for u in page.users] == [u.id for u in cursored.users]
    assert page.total == cursored.total
    connection = db.connection()
    # the statements that filter (not the read of the page's rows by id)
    filtering = [(s, p) for s, p in seen if "users.status !=" in s]
    assert len(filtering) >= 2, seen
    return [plan(connection, s, p) for s, p in filtering], {u.id for u in page.users}


def _some_family(db: Session, org: Organization, common: bool) -> str:
    names = db.execute(
        select(User.last_name).where(User.organization_id == org.id, User.last_name != "")
    ).scalars()
    counts: dict[str, int] = {}
    for name in names:
        counts[name] = counts.get(name, 0) + 1
    ranked = sorted(counts, key=lambda name: (counts[name], name))
    return ranked[-1] if common else ranked[0]


@pytest.mark.parametrize("common", [True, False])
def test_family_name_sw_and_eq_read_the_lower_last_name_index(
    db: Session, people: Organization, connection: Connection, common: bool
) -> None:
    family = _some_family(db, people, common)
    users = db.scalars(select(User).where(User.organization_id == people.id)).all()
    for expression, wanted in (
        (
            f'name.familyName sw "{family[:3].upper()}"',
            {u.id for u in users if u.last_name.lower().startswith(family[:3].lower())},
        ),
        (
            f'name.familyName eq "{family.lower()}"',
            {u.id for u in users if u.last_name.lower() == family.lower()},
        ),
    ):
        wanted = {u.id for u in users if u.id in wanted and u.status != "deleted"}
        assert filters.users_few(expression)
        plans, found = _plans(db, people, expression)
        assert found == set(sorted(wanted)[:50]), expression
        for seen in plans:
            assert INDEX in seen, (expression, seen)
            if connection.dialect.name == "sqlite":
                assert "SCAN users" not in seen, seen
            else:
                assert "Seq Scan on users" not in seen, seen


def test_user_name_eq_reads_the_email_index(
    db: Session, people: Organization, connection: Connection
) -> None:
    someone = db.scalars(
        select(User).where(User.organization_id == people.id, User.status != "deleted")
    ).first()
    assert someone is not None
    expression = f'userName eq "{someone.email.upper()}"'
    plans, found = _plans(db, people, expression)
    assert found == {someone.id}
    for seen in plans:
        if connection.dialect.name == "sqlite":
            assert "email_normalized=?" in seen, seen
            assert "SCAN users" not in seen, seen
        else:
            # The page's ids from the email index (then their rows and teams by key).
            [condition] = [
                line
                for line in seen.splitlines()
                if "Index Cond" in line and "email_normalized" in line
            ]
            assert f"= '{someone.email_normalized}'" in condition, seen
            assert "Seq Scan on users" not in seen, seen


def test_a_filter_without_an_index_of_its_own_pages_along_the_id(
    db: Session, people: Organization, connection: Connection
) -> None:
    """`active eq true` holds most users: read in id order until the page is full, not
    all of them sorted."""
    assert not filters.users_few("active eq true")
    assert not filters.users_few('name.familyName co "e"')
    assert not filters.users_few('userName eq "a@b.c" or title pr')
    assert filters.users_few('userName eq "a@b.c" and active eq true')
    assert filters.users_few('name.familyName sw "a" or externalId eq "x"')
    if connection.dialect.name != "sqlite":
        return
    actor = system_actor(people.id, "Okta")
    with user_reads(db) as seen:
        scim_users.search(db, actor=actor, filter_="active eq true", count=20)
    [page] = [(s, p) for s, p in seen if "LIMIT" in s]
    assert "USE TEMP B-TREE FOR ORDER BY" not in plan(connection, *page)


def test_the_range_of_a_prefix_keeps_exactly_the_names_that_start_with_it(
    db: Session, org: Organization
) -> None:
    """The bounds of `sw`, next to the edges of the code points: the LIKE and the range
    agree, whatever the prefix's last character."""
    names = ["lee", "leé", "Lef", "le\U0010ffff", "le\U0010ffffz", "le\ud7ffx", "le\ue000", "lf"]
    made = [
        factories.make_user(db, org, email=f"edge{n}@example.com", last_name=name)
        for n, name in enumerate(names)
    ]
    actor = system_actor(org.id, "Okta")
    for prefix in ("le", "le\U0010ffff", "le\ud7ff", "lee", "LE"):
        page = scim_users.search(db, actor=actor, filter_=f'name.familyName sw "{prefix}"')
        wanted = {u.id for u in made if u.last_name.lower().startswith(prefix.lower())}
        assert wanted
        assert {u.id for u in page.users} == wanted, prefix
