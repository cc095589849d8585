"""Several workers on one database (committed data, as in production): each email once."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, delete, func, select

from tests.conftest import make_settings
from tests.mail.smtp import SmtpServer
from userdesk.db.base import utcnow
from userdesk.db.session import Database
from userdesk.mail.models import OutboxMessage
from userdesk.organizations import service as organizations
from userdesk.organizations.models import Organization
from userdesk.worker import Worker

EMAILS = 40


@pytest.fixture
def committed_org(engine: Engine) -> Iterator[int]:
    """An organization with EMAILS queued emails, committed; deleted afterwards."""
    database = Database(engine)
    with database.unit_of_work() as db:
        org = organizations.create_organization(db, slug="workers-test", name="Workers")
        for n in range(EMAILS):
            db.add(
                OutboxMessage(
                    organization_id=org.id,
                    kind="email",
                    status="pending",
                    recipient=f"person{n}@example.com",
                    subject=f"Hello {n}",
                    payload={"text": f"Message {n}", "html": ""},
                    next_attempt_at=utcnow(),
                )
            )
        org_id = org.id
    yield org_id
    with database.unit_of_work() as db:
        db.execute(delete(Organization).where(Organization.id == org_id))


def test_two_workers_send_each_email_exactly_once(
    engine: Engine, committed_org: int, tmp_path: Path
) -> None:
    server = SmtpServer()
    server.start()
    settings = dataclasses.replace(make_settings(tmp_path, str(engine.url)), smtp_url=server.url)
    database = Database(engine)
    workers = [Worker(database, settings) for _ in range(2)]
    sent_by = {w.name: 0 for w in workers}

    def drain(worker: Worker) -> None:
        while tried := worker.run_once():
            sent_by[worker.name] += tried

    threads = [threading.Thread(target=drain, args=(w,)) for w in workers]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        server.stop()
    subjects = sorted(m["Subject"] for m in server.inbox.messages)
    assert subjects == sorted(f"Hello {n}" for n in range(EMAILS))
    assert sum(sent_by.values()) == EMAILS
    with database.sessions() as db:
        left = db.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.organization_id == committed_org, OutboxMessage.status != "sent")
        )
    assert left == 0
