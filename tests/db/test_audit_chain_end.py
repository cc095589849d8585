"""The end of the audit chain is read once per transaction and organization (audit.service
_last_hash): the chain stays one valid chain when a savepoint is rolled back, and when
writers of other processes append at the same time."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from tests import factories
from tests.conftest import POSTGRES_URL, postgres_schema
from tests.statements import statements_sent
from userdesk.access.rules import system_actor
from userdesk.audit import service as audit
from userdesk.audit.models import AuditEvent
from userdesk.db.engine import make_engine
from userdesk.db.migrate import upgrade
from userdesk.db.session import Database
from userdesk.organizations.models import Organization


def test_a_transaction_reads_the_chain_end_once(db: Session, org: Organization) -> None:
    actor = system_actor(org.id)
    audit.record(db, actor=actor, action="test.first")
    with statements_sent(db.connection()) as seen:
        for n in range(5):
            audit.record(db, actor=actor, action=f"test.{n}")
    assert not [s for s in seen if "audit_events.hash" in s or "FROM organizations" in s]
    db.expire_all()
    assert audit.verify_chain(db, organization_id=org.id) == []


def test_an_event_rolled_back_with_its_savepoint_is_not_chained_to(
    db: Session, org: Organization
) -> None:
    actor = system_actor(org.id)
    first = audit.record(db, actor=actor, action="test.first")
    savepoint = db.begin_nested()
    audit.record(db, actor=actor, action="test.gone")
    audit.record_many(db, actor=actor, action="test.gone", target_type="user", targets=[(1, {})])
    savepoint.rollback()
    after = audit.record(db, actor=actor, action="test.after")
    assert after.prev_hash == first.hash
    db.expire_all()
    assert audit.verify_chain(db, organization_id=org.id) == []


@pytest.fixture
def own_database(engine: Engine, tmp_path: Path) -> Iterator[str]:
    """The URL of a migrated database of the test's own (it commits), on ENGINE's backend."""
    if engine.dialect.name == "sqlite":
        url = f"sqlite:///{tmp_path}/chain.db"
        setup = make_engine(url)
        upgrade(setup)
        setup.dispose()
        yield url
        return
    assert POSTGRES_URL
    with postgres_schema("ud_chain") as schema:
        url = POSTGRES_URL
        setup = make_engine(url, connect_args={"options": f"-csearch_path={schema},public"})
        upgrade(setup)
        setup.dispose()
        yield f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema},public"


def test_writers_of_two_processes_at_once_form_one_chain(own_database: str) -> None:
    """Two databases (as two server processes have), each appending events a few per
    transaction, interleaved: one valid chain, every event in it."""
    setup = Database.from_url(own_database)
    with setup.unit_of_work() as db:
        org_id = factories.make_organization(db).id
    setup.dispose()
    failures: list[BaseException] = []
    start = threading.Barrier(2)

    def write(name: str) -> None:
        database = Database.from_url(own_database)
        try:
            start.wait()
            for round_ in range(4):
                with database.unit_of_work() as db:
                    actor = system_actor(org_id, name)
                    for n in range(3):
                        audit.record(db, actor=actor, action=f"test.{round_}.{n}")
                        time.sleep(0.002)
                    audit.record_many(
                        db, actor=actor, action="test.many", target_type="user",
                        targets=[(1, {}), (2, {})],
                    )  # fmt: skip
        except BaseException as exc:  # reported below
            failures.append(exc)
        finally:
            database.dispose()

    threads = [threading.Thread(target=write, args=(name,)) for name in ("one", "two")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert failures == []
    check = Database.from_url(own_database)
    with check.unit_of_work(write=False) as db:
        assert audit.verify_chain(db, organization_id=org_id) == []
        names = db.scalars(
            select(AuditEvent.actor_name).where(AuditEvent.organization_id == org_id)
        )
        assert sorted(set(names)) == ["one", "two"]
        assert audit.count_events(db, organization_id=org_id) == 2 * 4 * 5
    check.dispose()
