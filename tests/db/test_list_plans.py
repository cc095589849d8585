"""SQLite reads a page of users the way builder.selection chose: from a rare term's few
users, or along the index of the list's sort. Its statistics cannot tell a rare value from
a common one, so without steering it may read the whole table for one page."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Column, Connection, event, func, literal_column, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.sql import visitors

from tests.statements import statements_sent
from userdesk import demo
from userdesk.access.models import Role
from userdesk.access.rules import Permission, system_actor
from userdesk.db.base import utcnow
from userdesk.db.paging import RanLong, fetch_page_within
from userdesk.organizations.models import Organization
from userdesk.query import builder
from userdesk.query.rules import parse
from userdesk.users import fields, service
from userdesk.users.field_schemas import UserFieldCreate
from userdesk.users.models import User, UserRole


@contextmanager
def page_plans(db: Session) -> Iterator[list[str]]:
    """The query plans of the page statements (those with LIMIT) run inside."""
    connection = db.connection()
    pages: list[tuple[str, Any]] = []

    def seen(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "ORDER BY" in statement and statement.lstrip().startswith("SELECT users.id"):
            pages.append((statement, parameters))

    event.listen(connection, "before_cursor_execute", seen)
    plans: list[str] = []
    try:
        yield plans
    finally:
        event.remove(connection, "before_cursor_execute", seen)
    for statement, parameters in pages:
        rows = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
        plans.append("\n".join(row[3] for row in rows))


@pytest.fixture
def people(db: Session, org: Organization, connection: Connection) -> Organization:
    """Enough demo users (with their statistics) for SQLite to plan as it would at scale;
    one of them alone has a churn level."""
    demo.populate(db, organization=org, count=3_000, seed=3)
    first = db.scalars(select(User).where(User.organization_id == org.id).limit(1)).one()
    first.churn_level = "high"
    db.flush()
    connection.exec_driver_sql("ANALYZE")
    return org


@pytest.mark.only_on("sqlite")
def test_a_rare_term_pages_from_its_few_users(
    db: Session, people: Organization, connection: Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    for sort in ("name", "-seen", "created", "email"):
        with page_plans(db) as plans:
            page = service.list_users(db, actor=system_actor(people.id), q="churn:high", sort=sort)
        assert len(page.items) == 1
        assert plans, sort
        for plan in plans:
            assert "SEARCH users USING INTEGER PRIMARY KEY" in plan, (sort, plan)


@pytest.mark.only_on("sqlite")
@pytest.mark.parametrize("listed_most", [0, 1_000])
def test_common_terms_page_along_the_sort_index(
    db: Session,
    people: Organization,
    connection: Connection,
    monkeypatch: pytest.MonkeyPatch,
    listed_most: int,
) -> None:
    """Checked row by row (LISTED_MOST 0) or against their lists, never sorted whole.

    The read in sort order is given all the time it needs: on a loaded machine it may run
    past READ_IN_ORDER_WITHIN and sort a short list instead, which is right, but not the
    plan this test is about (test_query_exact runs every query that way too)."""
    monkeypatch.setattr(builder, "FEW", 5)
    monkeypatch.setattr(builder, "LISTED_MOST", listed_most)
    monkeypatch.setattr(service, "READ_IN_ORDER_WITHIN", 600.0)
    for sort, index in (("name", "ix_users_org_name"), ("created", "ix_users_org_created")):
        with page_plans(db) as plans:
            page = service.list_users(
                db, actor=system_actor(people.id), q="login:never verified:yes e", sort=sort
            )
        assert len(page.items) == service.DEFAULT_PAGE_SIZE
        assert plans, sort
        for plan in plans:
            assert index in plan, (sort, plan)
            assert "TEMP B-TREE" not in plan, (sort, plan)


@pytest.mark.only_on("sqlite")
@pytest.mark.parametrize("text_listed_most", [0, 50_000])
def test_free_text_a_searchable_field_may_hold_is_listed_as_free_text(
    db: Session,
    people: Organization,
    connection: Connection,
    monkeypatch: pytest.MonkeyPatch,
    text_listed_most: int,
) -> None:
    """Free text that also starts a searchable field's values is checked against its list
    (the text index's ids and the values') up to TEXT_LISTED_MOST users, as free text
    alone is, not LISTED_MOST: read in sort order, an index entry is looked up in the list
    before its row is read ("ann group:Trial" by name at a million users, 32,500 users:
    140 ms checked row by row)."""
    monkeypatch.setattr(builder, "FEW", 5)  # as at a million users: no list is short
    monkeypatch.setattr(builder, "LISTED_MOST", 6)  # fewer than the text's matches
    monkeypatch.setattr(builder, "TEXT_LISTED_MOST", text_listed_most)
    # The row's check then holds no list of its own: only the page's list names users_fts.
    monkeypatch.setattr(builder, "FIELD_TEXT_LISTED_MOST", 0)
    monkeypatch.setattr(service, "READ_IN_ORDER_WITHIN", 600.0)
    actor = system_actor(people.id)
    company = UserFieldCreate(key="company", label="Company", type="text", searchable=True)
    fields.create_field(db, actor=actor, data=company)
    with page_plans(db) as plans:
        page = service.list_users(db, actor=actor, q="son verified:yes", sort="name")
    assert len(page.items) == service.DEFAULT_PAGE_SIZE
    assert len(plans) == 1, plans
    assert "ix_users_org_name" in plans[0], plans
    assert "TEMP B-TREE" not in plans[0], plans
    assert ("users_fts" in plans[0]) == (text_listed_most > 0), plans


@pytest.mark.only_on("sqlite")
def test_a_short_range_of_a_time_with_listed_terms_is_read_along_its_index_and_sorted(
    db: Session, people: Organization, connection: Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever the sort, a page's cost is then the range's index entries (each id checked
    against the terms' lists) and its matches sorted, not a read in sort order whose
    length only the matches' place along the sort decides."""
    monkeypatch.setattr(builder, "FEW", 5)
    now = utcnow()
    in_range = db.scalar(
        select(func.count()).where(
            User.organization_id == people.id, User.last_seen_at >= now - timedelta(days=7)
        )
    )
    assert in_range is not None
    assert in_range <= builder.RANGE_SORTED_MOST
    for sort in ("name", "email", "created"):
        with page_plans(db) as plans:
            page = service.list_users(db, actor=system_actor(people.id), q="e seen:<7d", sort=sort)
        assert page.items, sort
        assert plans, sort
        for plan in plans:
            assert "ix_users_org_last_seen" in plan, (sort, plan)
            assert "TEMP B-TREE FOR ORDER BY" in plan, (sort, plan)


@contextmanager
def page_statements(db: Session) -> Iterator[list[str]]:
    """The SQL of the page statements (those with ORDER BY) run inside, once it has run."""
    pages: list[str] = []
    with statements_sent(db.connection()) as sent:
        yield pages
    pages.extend(s for s in sent if "ORDER BY" in s and s.lstrip().startswith(_PAGE_STARTS))


# A page statement: its rows' columns, or (PostgreSQL, read in sort order) those of the
# rows whose ids it finds first (userdesk.db.paging).
_PAGE_STARTS = ("SELECT users.id", "SELECT page_row.id")


@pytest.mark.only_on("postgresql")
def test_a_statement_timeout_is_told_apart_from_other_errors(
    db: Session, connection: Connection
) -> None:
    connection.exec_driver_sql("SAVEPOINT timing_out")
    connection.exec_driver_sql("SET LOCAL statement_timeout = 1")
    with pytest.raises(DBAPIError) as stopped:
        connection.exec_driver_sql("SELECT pg_sleep(1)")
    connection.exec_driver_sql("ROLLBACK TO SAVEPOINT timing_out")
    with pytest.raises(DBAPIError) as other:
        connection.exec_driver_sql("SELECT 1 / 0")
    connection.exec_driver_sql("ROLLBACK TO SAVEPOINT timing_out")
    assert builder.timed_out(stopped.value)
    assert not builder.timed_out(other.value)


@pytest.mark.only_on("sqlite")
def test_the_counts_of_all_users_read_one_index_alone(
    db: Session, people: Organization, connection: Connection
) -> None:
    """The tabs' counts without a filter (every user of the organization, by status and
    sign-in) come from ix_users_org_status_login, not from the table (migration 0021).
    On SQLite: PostgreSQL reads an index alone only where its visibility map says so."""
    plan = _tally_plan(db, connection, people, "")
    assert "COVERING INDEX ix_users_org_status_login" in plan, plan


@pytest.mark.only_on("sqlite")
@pytest.mark.parametrize("text_listed_most", [0, 50_000])
def test_the_counts_of_a_short_range_read_its_index(
    db: Session,
    people: Organization,
    connection: Connection,
    monkeypatch: pytest.MonkeyPatch,
    text_listed_most: int,
) -> None:
    """Counted, a range on a time of at most RANGE_SORTED_MOST users is read along its index
    (its users tested, with the term's list or row by row), not every user along the
    index of the status the figures are grouped by."""
    monkeypatch.setattr(builder, "FEW", 5)  # as at a million users: no list is short
    monkeypatch.setattr(builder, "TEXT_LISTED_MOST", text_listed_most)
    plan = _tally_plan(db, connection, people, "e created:<30d")
    assert "ix_users_org_created (organization_id=? AND created_at>?)" in plan, plan


@pytest.mark.only_on("postgresql")
def test_on_postgresql_a_rare_role_pages_by_sorting_its_few_users(
    db: Session, people: Organization, connection: Connection
) -> None:
    """PostgreSQL would read the name index to the end for a role a few users hold: the
    page's order is written so that no index gives it, and the role's users are sorted,
    found by id from their links' ids gathered first (not planned as a read of all)."""
    with page_statements(db) as pages:
        page = service.list_users(db, actor=system_actor(people.id), q="role:Agent", sort="name")
    assert page.items
    assert pages
    for statement in pages:
        order_by = statement[statement.index("ORDER BY") :]
        assert "|| ''" in order_by, statement
        assert "CASE WHEN" not in statement, statement
        assert "users.id = ANY (coalesce((SELECT array_agg(" in statement, statement
        assert "EXISTS" not in statement, statement


@pytest.mark.only_on("postgresql")
def test_on_postgresql_a_page_of_sorted_users_has_room_for_exact_bitmaps(
    db: Session, people: Organization, connection: Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page whose users are found by their terms' indexes and sorted raises work_mem
    (a lossy bitmap would have every row of its pages tested again: 40 s at 10 M users);
    a page read in sort order leaves it as it was."""
    monkeypatch.setattr(builder, "PG_READ_IN_ORDER_LEAST", 60.0)
    before = connection.exec_driver_sql("SHOW work_mem").scalar()
    assert before != service.PG_SORTED_WORK_MEM
    actor = system_actor(people.id)
    assert service.list_users(db, actor=actor, q="e", sort="name").items
    assert connection.exec_driver_sql("SHOW work_mem").scalar() == before
    assert service.list_users(db, actor=actor, q="role:Agent", sort="name").items
    assert connection.exec_driver_sql("SHOW work_mem").scalar() == service.PG_SORTED_WORK_MEM


@pytest.mark.only_on("postgresql")
def test_on_postgresql_a_read_in_order_gets_no_longer_than_the_planned_terms_take_sorted(
    db: Session, people: Organization, connection: Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ "e" matches nearly every user, never signed in and seen long ago few of them: the
    read in name order stops by the time sorting those few would take, not by the time
    sorting every user with an "e" would (8 to 40 s at 10 M users)."""
    monkeypatch.setattr(builder, "PG_SORTED_ROW_SECONDS", 1.0)  # within: users sorted
    monkeypatch.setattr(builder, "PG_READ_IN_ORDER_LEAST", 0.0)
    monkeypatch.setattr(builder, "PAGE_ROWS", 0)  # read in order, as at 10 M users
    with_e = db.scalar(
        select(func.count()).where(User.organization_id == people.id, User.search_text.ilike("%e%"))
    )
    assert with_e is not None
    found = builder.selection(
        db,
        organization_id=people.id,
        query=parse("e login:never seen:>90d"),
        now=utcnow(),
        sort_column=User.first_name,
    )
    assert found.instead is not None
    assert found.within is not None
    assert 0 < found.within < with_e / 4, (found.within, with_e)


@pytest.mark.only_on("postgresql")
def test_on_postgresql_the_filters_a_read_in_order_passes_count_against_it(
    db: Session, people: Organization, connection: Connection
) -> None:
    """A range on a time shortens a read in another column's order by as much as the
    statistics say it leaves out; along its own column's index, not at all."""
    [seen] = builder._conditions(db, people.id, parse("seen:<1d"), utcnow(), "postgresql")
    top_id = db.scalar(select(func.max(User.id))) or 0
    recent = db.scalar(
        select(func.count()).where(User.last_seen_at >= utcnow() - timedelta(days=1))
    )
    assert recent is not None
    assert 0 < recent < top_id / 4
    by_name = builder._pg_planned_share(db, [seen], User.first_name, top_id)
    assert by_name < 0.5
    assert builder._pg_planned_share(db, [seen], User.last_seen_at, top_id) == 1.0


@pytest.mark.only_on("postgresql")
def test_on_postgresql_a_common_role_is_estimated_whatever_the_order_of_its_links(
    db: Session, people: Organization, connection: Connection
) -> None:
    """The role most users hold, its links stored newest user first (a table read in its
    own order then starts at the largest ids): its estimate is still about its count, so
    that its page is read along the sort index rather than by sorting most users."""
    member = db.scalars(
        select(Role).where(Role.organization_id == people.id, Role.name == "Member")
    ).one()
    connection.exec_driver_sql(
        "CREATE TEMPORARY TABLE member_links AS SELECT * FROM user_roles WHERE role_id = %s",
        (member.id,),
    )
    connection.exec_driver_sql("DELETE FROM user_roles WHERE role_id = %s", (member.id,))
    connection.exec_driver_sql(
        "INSERT INTO user_roles SELECT * FROM member_links ORDER BY user_id DESC"
    )
    connection.exec_driver_sql("ANALYZE user_roles")
    held = db.scalar(
        select(func.count()).select_from(UserRole).where(UserRole.role_id == member.id)
    )
    assert held is not None
    assert held > builder.PG_PROBE
    top_id = db.scalar(select(func.max(User.id))) or 0
    [term] = builder._conditions(db, people.id, parse("role:Member"), utcnow(), "postgresql")
    estimate = builder._pg_size(db, term, top_id)
    assert abs(estimate - held) <= held * 0.1, (estimate, held)


@pytest.mark.only_on("postgresql")
def test_on_postgresql_a_common_term_is_read_along_the_sort_index(
    db: Session, people: Organization, connection: Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A word prefix most users hold is tested row by row in sort order, by an expression
    no index answers (the index of the words would list them all first), its cheap
    necessary test (ILIKE) first; the page's ids found first, by a statement that reads
    no column but the conditions' and the sort's (an index may hold them all: migration
    0023), then their rows."""
    # However loaded the machine, the read in order is not stopped for its time (and its
    # page then found by the other statement, that of few users).
    monkeypatch.setattr(builder, "PG_READ_IN_ORDER_LEAST", 60.0)
    with page_statements(db) as pages:
        page = service.list_users(db, actor=system_actor(people.id), q="e", sort="name")
    assert len(page.items) == service.DEFAULT_PAGE_SIZE
    assert pages
    for statement in pages:
        assert "CASE WHEN" in statement, statement
        assert statement.index("ILIKE") < statement.index("to_tsvector"), statement
        ids = statement[statement.index("WHERE page_row.id IN (SELECT users.id") :]
        assert "|| ''" not in ids[ids.index("ORDER BY") :], statement


@pytest.mark.only_on("postgresql")
def test_on_postgresql_a_page_past_its_time_is_stopped_and_the_transaction_goes_on(
    db: Session, people: Organization, connection: Connection
) -> None:
    slow = literal_column("(SELECT true FROM pg_sleep(0.2))")
    key = service.sort_key("name")
    before = connection.exec_driver_sql("SHOW statement_timeout").scalar()
    with pytest.raises(RanLong):
        fetch_page_within(
            db, [User.id, *key.columns], [slow], key, cursor=None, limit=5, seconds=0.01
        )
    assert connection.exec_driver_sql("SHOW statement_timeout").scalar() == before
    rows, _ = fetch_page_within(
        db, [User.id, *key.columns], [], key, cursor=None, limit=5, seconds=5
    )
    assert len(rows) == 5


@pytest.mark.only_on("sqlite")
def test_several_statuses_page_along_each_status_index(
    db: Session, people: Organization, connection: Connection
) -> None:
    """A page of several statuses is one page per status, each read along the index of its
    status and the sort (merged after), never a sort of every match nor a read of the
    other statuses' rows."""
    sorts = {
        "name": "ix_users_org_status_name",
        "-seen": "ix_users_org_status_last_seen",
        "created": "ix_users_org_status_created",
        "email": "ix_users_org_status_email",
    }
    for sort, index in sorts.items():
        with page_plans(db) as plans:
            page = service.list_users(
                db, actor=system_actor(people.id), q="status:active,pending", sort=sort
            )
        assert len(page.items) == service.DEFAULT_PAGE_SIZE
        assert {u["status"] for u in page.items} <= {"active", "pending"}, sort
        assert len(plans) >= 2, sort
        for plan in plans:
            assert index in plan, (sort, plan)
            assert "TEMP B-TREE" not in plan, (sort, plan)


@pytest.mark.only_on("postgresql")
def test_on_postgresql_an_email_is_looked_up_by_its_part_up_to_the_at(
    db: Session, people: Organization, connection: Connection
) -> None:
    """A term with an @ asks the trigram index for its part up to the @ (a domain's
    trigrams list most users), the whole term checked on each row found: the page still
    holds exactly the users whose text has the whole term, one whose address only ends
    with it too."""
    first, second, third = db.scalars(
        select(User).where(User.organization_id == people.id).order_by(User.id).limit(3)
    ).all()
    term = first.email
    second.email = f"re{term}"
    second.email_normalized = second.email.lower()
    third.email = f"{term.split('@')[0]}@elsewhere.test"
    third.email_normalized = third.email.lower()
    db.flush()
    with page_statements(db) as pages:
        page = service.list_users(db, actor=system_actor(people.id), q=term, sort="-seen")
    assert {u["id"] for u in page.items} == {str(first.id), str(second.id)}
    assert pages
    for statement in pages:
        assert "CASE WHEN (users.search_text ILIKE" in statement, statement


@pytest.mark.only_on("postgresql")
def test_on_postgresql_each_sorts_index_holds_every_column_its_pages_conditions_read(
    db: Session, people: Organization, connection: Connection
) -> None:
    """A page read in sort order is answered from its sort's index alone (migrations 0023
    and 0025, whose email index is the unique constraint's) only when that index holds
    every column of users its conditions, its order and its cursor read: a filter on a
    column left out would read each row again."""
    indexes = {
        "name": "ix_users_search_by_name",
        "-seen": "ix_users_search_by_seen",
        "created": "ix_users_search_by_created",
        "email": "uq_users_organization_id_email_normalized",
    }
    q = (
        "ann e status:active,banned team:Sales role:Agent group:VIP verified:no "
        "validated:yes seen:<7d created:<30d churn:high,low login:never"
    )
    actor = system_actor(people.id)
    for sort, index in indexes.items():
        definition = connection.exec_driver_sql(
            "SELECT indexdef FROM pg_indexes"
            " WHERE indexname = %s AND schemaname = current_schema()",
            (index,),
        ).scalar_one()
        held = set(re.findall(r"\w+", definition[definition.index("(") :]))
        key = service.sort_key(sort)
        found = service._selection(
            db, actor=actor, query=parse(q), permission=Permission.USERS_READ, sort=key
        )
        read: set[str] = set()
        for clause in [*found.where, *key.columns]:
            expression = getattr(clause, "__clause_element__", lambda c=clause: c)()
            read.update(
                c.name
                for c in visitors.iterate(expression)
                if isinstance(c, Column) and c.table is User.__table__
            )
        assert read, sort
        assert read <= held, (sort, read - held)


@pytest.mark.only_on("sqlite")
@pytest.mark.parametrize("sort", ["-seen", "seen"])
def test_never_signed_in_and_not_validated_by_last_seen_is_read_from_the_login_index(
    db: Session,
    people: Organization,
    connection: Connection,
    monkeypatch: pytest.MonkeyPatch,
    sort: str,
) -> None:
    """A page of "login:never validated:no" by last seen is read along the index of the
    sign-in (at scale, login:never lists too many users to sort), which lists those who
    never signed in by last seen (migration 0038: along the index of the sort, -seen
    passed every user ever seen first) and holds the validation: SQLite tests it on each
    entry and reads a user's row only for a match (its deferred seek)."""
    monkeypatch.setattr(builder, "FEW", 10)  # as at a million users: no list is short
    index = connection.exec_driver_sql("PRAGMA index_info(ix_users_org_last_login)")
    held = [row[2] for row in index]
    assert held == ["organization_id", "last_login_at", "last_seen_at", "id", "validated_at"]
    sent: list[tuple[str, Any]] = []

    def seen(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "ORDER BY" in statement and statement.lstrip().startswith("SELECT users.id"):
            sent.append((statement, parameters))

    event.listen(connection, "before_cursor_execute", seen)
    try:
        page = service.list_users(
            db, actor=system_actor(people.id), q="login:never validated:no", sort=sort
        )
    finally:
        event.remove(connection, "before_cursor_execute", seen)
    expected = db.scalars(
        select(User.id)
        .where(
            User.organization_id == people.id,
            User.last_login_at.is_(None),
            User.validated_at.is_(None),
        )
        .order_by(
            *(
                (User.last_seen_at.desc().nulls_last(), User.id.desc())
                if sort == "-seen"
                else (User.last_seen_at.asc().nulls_first(), User.id.asc())
            )
        )
        .limit(len(page.items))
    ).all()
    assert page.items
    assert [int(item["id"]) for item in page.items] == expected
    statement, parameters = sent[0]
    plan = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters).all()
    assert "USING INDEX ix_users_org_last_login" in plan[0][3], plan
    # (addr, opcode, p1, ...): the seek of the row is deferred, and what follows it first
    # reads the index's cursor (its last_login_at), not the table's.
    program = connection.exec_driver_sql(f"EXPLAIN {statement}", parameters).all()
    at = [row[1] for row in program].index("DeferredSeek")
    index_cursor = program[at][2]
    assert program[at + 1][1] == "Column"
    assert program[at + 1][2] == index_cursor, program[at : at + 4]


def _tally_plan(db: Session, connection: Connection, org: Organization, q: str) -> str:
    """SQLite's plan of the statement that counts the tabs of Q."""
    where = service.matching(
        db,
        actor=system_actor(org.id),
        query=builder.parse_query(q),
        permission=Permission.USERS_READ,
    )
    compiled = service._tally_query(where, "sqlite").compile(connection)
    values = tuple(compiled.params[name] for name in compiled.positiontup or ())
    rows = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled.string}", values).all()
    return "\n".join(row[3] for row in rows)


@pytest.mark.only_on("sqlite")
@pytest.mark.parametrize("sort", ["name", "email"])
def test_a_short_range_of_a_time_with_a_status_is_read_along_their_index_and_sorted(
    db: Session,
    people: Organization,
    connection: Connection,
    monkeypatch: pytest.MonkeyPatch,
    sort: str,
) -> None:
    """A range on a time that is the page's only term read row by row, with a single
    status, is counted with the status (along the index of both) and, when that costs
    fewer rows than a read along the status's index would pass for a page, read along it
    and sorted: the page costs the users of both, not the status's users up to a page
    ("created:<7d status:disabled" by name at a million users: 459 users, 6 ms; 34 to
    80 ms along ix_users_org_status_name)."""
    monkeypatch.setattr(builder, "FEW", 5)  # as at a million users: no list is short
    actor = system_actor(people.id)
    q = "created:<60d status:active"
    now = utcnow()
    expected = db.scalars(
        select(User.id).where(
            User.organization_id == people.id,
            User.status == "active",
            User.created_at >= now - timedelta(days=60),
        )
    ).all()
    top_id = db.scalar(select(func.max(User.id)))
    assert top_id is not None
    assert 0 < len(expected) ** 2 <= builder.PAGE_ROWS * top_id
    with page_plans(db) as plans:
        page = service.list_users(db, actor=actor, q=q, sort=sort, limit=500)
    assert {int(u["id"]) for u in page.items} == set(expected)
    assert len(plans) == 1, plans
    assert (
        "ix_users_org_status_created (organization_id=? AND status=? AND created_at>?)"
        in (plans[0])
    ), plans
    assert "TEMP B-TREE FOR ORDER BY" in plans[0], plans


@pytest.mark.only_on("sqlite")
@pytest.mark.parametrize(
    ("sort", "index"), [("created", "ix_users_org_created"), ("name", "ix_users_org_name")]
)
def test_a_range_of_last_seen_read_in_created_or_name_order_is_tested_on_the_index(
    db: Session,
    people: Organization,
    connection: Connection,
    monkeypatch: pytest.MonkeyPatch,
    sort: str,
    index: str,
) -> None:
    """Read along the index of the sort by created time or by name, a range of last seen
    is tested on each entry, which holds that time (migration 0040): a user's row is read
    only when it matches (SQLite's deferred seek), not for each user passed."""
    monkeypatch.setattr(builder, "FEW", 5)
    monkeypatch.setattr(builder, "RANGE_FIRST_MOST", 0)  # never read along the range
    monkeypatch.setattr(service, "READ_IN_ORDER_WITHIN", 600.0)
    held = [row[2] for row in connection.exec_driver_sql(f"PRAGMA index_info({index})")]
    assert {"last_seen_at", "last_login_at", "validated_at", "email_verified_at"} <= set(held)
    sent: list[tuple[str, Any]] = []

    def seen(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "ORDER BY" in statement and statement.lstrip().startswith("SELECT users.id"):
            sent.append((statement, parameters))

    event.listen(connection, "before_cursor_execute", seen)
    try:
        page = service.list_users(db, actor=system_actor(people.id), q="seen:<30d", sort=sort)
    finally:
        event.remove(connection, "before_cursor_execute", seen)
    assert page.items
    statement, parameters = sent[0]
    plan = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters).all()
    assert f"USING INDEX {index}" in plan[0][3], plan
    program = connection.exec_driver_sql(f"EXPLAIN {statement}", parameters).all()
    at = [row[1] for row in program].index("DeferredSeek")
    index_cursor = program[at][2]
    assert program[at + 1][1] == "Column"
    assert program[at + 1][2] == index_cursor, program[at : at + 4]
