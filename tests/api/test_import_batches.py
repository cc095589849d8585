"""An import's rows across several batches: each created user gets its own row's team,
groups, roles, invitation and audit event, whatever batch it fell in and whichever rows
beside it failed."""

from __future__ import annotations

import gc
import math

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from tests import factories
from tests.conftest import BoundDatabase
from userdesk.access.rules import system_actor
from userdesk.audit import service as audit
from userdesk.audit.models import AuditEvent
from userdesk.db import bulk
from userdesk.db.engine import CHECKPOINT_PAGES, LONG_WRITE_CHECKPOINT_PAGES
from userdesk.imports import service as imports
from userdesk.invitations.models import Invitation
from userdesk.jobs import service as jobs
from userdesk.jobs.models import Job
from userdesk.organizations.models import Organization
from userdesk.users.models import User, UserGroup, UserRole

FILE = (
    "email,first name,last name,team,groups,roles\n"
    "a@example.com,Ann,Lee,Sales,VIP;Beta,Agent\n"
    "bad-email,Bob,Bay,,,\n"
    "c@example.com,Cy,Dee,,,\n"
    "D@Example.com,Di,Doe,Support,Beta,\n"
    "a@example.com,Ann,Twice,,,\n"
    "e@example.com,Ed,Eve,,VIP | Beta,Agent\n"
    "f@example.com,Flo,Fay,Nowhere,,\n"
    "g@example.com,Gil,Gee,Sales,,\n"
)


def test_each_user_of_a_file_of_several_batches_gets_its_own_rows_links_and_event(
    db: Session, org: Organization, database: BoundDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(imports, "BATCH", 3)
    sales, support = factories.make_team(db, org, "Sales"), factories.make_team(db, org, "Support")
    vip, beta = factories.make_group(db, org, "VIP"), factories.make_group(db, org, "Beta")
    agent = factories.role(db, org, "Agent")
    actor = system_actor(org.id, "tests")
    with database.unit_of_work() as session:
        draft = imports.draft(session, actor=actor, filename="f.csv", content=FILE.encode())
        job_id = imports.start(session, actor=actor, job_id=draft.id, dry_run=False).id
    steps = 0
    finished = False
    while not finished:
        with database.unit_of_work() as session:
            finished = jobs.step(session, job=session.get_one(Job, job_id), base_url="http://x")
        steps += 1
    assert steps == 3  # 8 rows, 3 a batch

    created = {
        user.email: user
        for user in db.scalars(
            select(User).where(User.organization_id == org.id, User.created_via == "import")
        )
    }
    assert sorted(created) == [
        "D@Example.com",
        "a@example.com",
        "c@example.com",
        "e@example.com",
        "g@example.com",
    ]
    assert created["D@Example.com"].email_normalized == "d@example.com"

    def of(user: User) -> tuple[object, ...]:
        groups = db.scalars(select(UserGroup.group_id).where(UserGroup.user_id == user.id))
        roles = db.scalars(select(UserRole.role_id).where(UserRole.user_id == user.id))
        return (user.first_name, user.last_name, user.team_id, sorted(groups), sorted(roles))

    assert of(created["a@example.com"]) == (
        "Ann",
        "Lee",
        sales.id,
        sorted([vip.id, beta.id]),
        [agent.id],
    )
    assert of(created["c@example.com"]) == ("Cy", "Dee", None, [], [])
    assert of(created["D@Example.com"]) == ("Di", "Doe", support.id, [beta.id], [])
    assert of(created["e@example.com"]) == (
        "Ed",
        "Eve",
        None,
        sorted([vip.id, beta.id]),
        [agent.id],
    )

    for email, user in created.items():
        invitation = db.scalars(select(Invitation).where(Invitation.user_id == user.id)).one()
        assert (invitation.email, invitation.status) == (email, "pending")
    events = {
        event.target_id: event.changes
        for event in db.scalars(select(AuditEvent).where(AuditEvent.action == "user.imported"))
    }
    assert len(events) == 5
    common = {"email_sent": False, "file": "f.csv"}
    assert events[str(created["a@example.com"].id)] == {
        "email": "a@example.com",
        "team": "Sales",
        "groups": ["VIP", "Beta"],
        "roles": ["Agent"],
        **common,
        "row": 2,
    }
    assert events[str(created["c@example.com"].id)] == {
        "email": "c@example.com",
        **common,
        "row": 4,
    }
    assert events[str(created["D@Example.com"].id)] == {
        "email": "D@Example.com",
        "team": "Support",
        "groups": ["Beta"],
        **common,
        "row": 5,
    }
    assert events[str(created["e@example.com"].id)] == {
        "email": "e@example.com",
        "groups": ["VIP", "Beta"],
        "roles": ["Agent"],
        **common,
        "row": 7,
    }
    db.expire_all()
    assert audit.verify_chain(db, organization_id=org.id) == []

    job = db.get_one(Job, job_id)
    assert (job.done, job.failed) == (5, 3)
    fates = [(item["row"], item["fate"]) for item in jobs.items(db, job)]
    assert fates == [
        (2, "created"),
        (3, "invalid"),
        (4, "created"),
        (5, "created"),
        (6, "exists"),  # created by the batch before
        (7, "created"),
        (8, "invalid"),
        (9, "created"),
    ]
    assert of(created["g@example.com"]) == ("Gil", "Gee", sales.id, [], [])


def test_an_imports_steps_leave_the_log_to_grow_and_its_last_puts_back_the_default(
    org: Organization, database: BoundDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite: each step but the last commits with wal_autocheckpoint raised (the log is
    copied into the database less often); the last, and a step that fails, with SQLite's
    default, so that their commits copy what is left."""
    monkeypatch.setattr(imports, "BATCH", 3)
    actor = system_actor(org.id, "tests")
    file = "email\n" + "".join(f"p{n}@example.com\n" for n in range(8))
    with database.unit_of_work() as session:
        draft = imports.draft(session, actor=actor, filename="f.csv", content=file.encode())
        job_id = imports.start(session, actor=actor, job_id=draft.id, dry_run=False).id
    seen = []
    finished = False
    while not finished:
        with database.unit_of_work() as session:
            finished = jobs.step(session, job=session.get_one(Job, job_id), base_url="http://x")
            if session.connection().dialect.name == "sqlite":
                pragma = session.connection().exec_driver_sql("PRAGMA wal_autocheckpoint")
                seen.append(pragma.scalar_one())
    if seen:
        assert seen == [LONG_WRITE_CHECKPOINT_PAGES] * 2 + [CHECKPOINT_PAGES]

        def fails(*args: object) -> bool:
            raise RuntimeError("step failed")

        monkeypatch.setattr(imports, "_run_batch", fails)
        with database.unit_of_work() as session:
            job = imports.start(session, actor=actor, job_id=job_id, dry_run=True)
            with pytest.raises(RuntimeError):
                imports._step(session, job, actor, "http://x")
            pragma = session.connection().exec_driver_sql("PRAGMA wal_autocheckpoint")
            assert pragma.scalar_one() == CHECKPOINT_PAGES


def test_an_imports_batches_run_with_the_collector_paused_and_leave_it_running(
    org: Organization, database: BoundDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each batch runs with the cyclic garbage collector off (no full pass over the file's
    rows in the middle of one); after each step, and after a step that fails, it runs."""
    monkeypatch.setattr(imports, "BATCH", 3)
    actor = system_actor(org.id, "tests")
    file = "email\n" + "".join(f"p{n}@example.com\n" for n in range(5))
    with database.unit_of_work() as session:
        draft = imports.draft(session, actor=actor, filename="f.csv", content=file.encode())
        job_id = imports.start(session, actor=actor, job_id=draft.id, dry_run=False).id
    during: list[bool] = []
    run_batch = imports._run_batch

    def watched(*args: object) -> bool:
        during.append(gc.isenabled())
        return run_batch(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(imports, "_run_batch", watched)
    assert gc.isenabled()
    finished = False
    while not finished:
        with database.unit_of_work() as session:
            finished = jobs.step(session, job=session.get_one(Job, job_id), base_url="http://x")
        assert gc.isenabled()
    assert during == [False, False]
    with database.unit_of_work() as session:
        created = session.scalars(
            select(User.email).where(User.organization_id == org.id, User.created_via == "import")
        ).all()
    assert sorted(created) == [f"p{n}@example.com" for n in range(5)]

    def fails(*args: object) -> bool:
        raise RuntimeError("step failed")

    monkeypatch.setattr(imports, "_run_batch", fails)
    with database.unit_of_work() as session:
        job = imports.start(session, actor=actor, job_id=job_id, dry_run=True)
        with pytest.raises(RuntimeError):
            imports._step(session, job, actor, "http://x")
    assert gc.isenabled()


@pytest.mark.only_on("sqlite")  # PostgreSQL's rows carry every column: more statements
def test_a_full_batch_goes_into_each_table_in_statements_of_the_most_rows_on_sqlite(
    org: Organization, database: BoundDatabase
) -> None:
    """SQLite: a batch of imports.BATCH rows inserts its users, invitations, audit events
    and job items in statements of bulk.ROWS_PER_STATEMENT rows (the parameters of the
    users' six columns allowing that many): a statement of 2,000 rows took 6 % more CPU
    time for the same rows."""
    actor = system_actor(org.id, "tests")
    file = "email,first name,last name\n" + "".join(
        f"p{n}@example.com,First{n},Last{n}\n" for n in range(imports.BATCH)
    )
    with database.unit_of_work() as session:
        draft = imports.draft(session, actor=actor, filename="f.csv", content=file.encode())
        job_id = imports.start(session, actor=actor, job_id=draft.id, dry_run=False).id
    inserts: list[str] = []

    def seen(conn: object, cursor: object, statement: str, *args: object) -> None:
        if statement.startswith("INSERT INTO"):
            inserts.append(statement.split()[2])

    event.listen(database.engine, "before_cursor_execute", seen)
    try:
        with database.unit_of_work() as session:
            assert jobs.step(session, job=session.get_one(Job, job_id), base_url="http://x")
    finally:
        event.remove(database.engine, "before_cursor_execute", seen)
    per_table = math.ceil(imports.BATCH / bulk.ROWS_PER_STATEMENT)
    assert sorted(inserts) == sorted(
        ["audit_events", "invitations", "job_items", "users"] * per_table
    )
    with database.unit_of_work() as session:
        job = session.get_one(Job, job_id)
        assert (job.done, job.failed) == (imports.BATCH, 0)
