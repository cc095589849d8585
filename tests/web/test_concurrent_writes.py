"""No write waits on another: a real server takes 15 imports and 30 other writes at once,
with the worker running beside it, and answers every one of them, quickly.

The server is uvicorn on a free local port, with a database of its own (a file on SQLite,
a schema of its own on PostgreSQL) since it commits for real; the requests come from
threads, all released together.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from sqlalchemy import func, select

from tests import factories
from tests.conftest import make_settings
from tests.mail.smtp import SmtpServer, free_port
from userdesk.config import Settings
from userdesk.db.session import Database
from userdesk.jobs.models import Job
from userdesk.mail.models import OutboxMessage
from userdesk.users.models import User
from userdesk.web.app import create_app
from userdesk.worker import Worker

IMPORTS, WRITES = 15, 30
ROWS = 250  # a file's rows: reading it is work, importing it a short step for the worker
MAILS = 40  # queued before the burst, for the worker to send during it
# seconds: no request may take longer (45 requests at once on a 2-core machine that also
# runs the other backend's suite and the worker beside, now with webhook delivery: 2 s
# was exceeded by 0.5 s twice in CI, never by the multi-second waits this test is for)...
SLOWEST = 3.0
NOISE = 1.5  # ...unless the machine is so loaded that serving the burst one request after
# the other takes longer: then no request may wait more than that, and half of it again.


@dataclass(frozen=True)
class Live:
    url: str
    key: str
    database: Database
    settings: Settings  # the server's, with SMTP


@pytest.fixture
def live(own_database: Database, tmp_path: Path, smtp: SmtpServer) -> Iterator[Live]:
    """The app served by uvicorn on OWN_DATABASE, with an API key of an Administrator and
    MAILS invitation emails waiting in the outbox."""
    with own_database.unit_of_work() as db:
        org = factories.make_organization(db)
        key = factories.make_api_key(db, org)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    database_url = own_database.engine.url.render_as_string(hide_password=False)
    settings = dataclasses.replace(
        make_settings(tmp_path, database_url), base_url=url, smtp_url=smtp.url
    )
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, own_database), host="127.0.0.1", port=port, log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    invited = httpx.post(
        f"{url}/api/v1/invitations",
        json={"people": [{"email": f"invited{n}@example.com"} for n in range(MAILS)]},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert invited.status_code == 201, invited.text
    yield Live(url, key, own_database, settings)
    server.should_exit = True
    thread.join(timeout=10)


def people(n: int) -> bytes:
    return (
        "email,first name,last name\r\n"
        + "".join(f"file{n}-person{i}@example.com,Ann{i},Lee{n}\r\n" for i in range(ROWS))
    ).encode()


@dataclass(frozen=True)
class Answer:
    what: str
    status: int  # 0: no answer at all
    seconds: float
    body: str


def post(client: httpx.Client, key: str, what: str, n: int, *, dry_run: bool = False) -> Answer:
    """Send import N (a file of ROWS people) or create group N; how it went."""
    headers = {"Authorization": f"Bearer {key}"}
    started = time.monotonic()
    try:
        if what == "import":
            response = client.post(
                "/api/v1/imports",
                files={"file": (f"people{n}.csv", people(n), "text/csv")},
                data={"dry_run": str(dry_run).lower()},
                headers=headers,
            )
        else:
            response = client.post("/api/v1/groups", json={"name": f"Group {n}"}, headers=headers)
    except httpx.HTTPError as exc:
        return Answer(what, 0, time.monotonic() - started, repr(exc))
    return Answer(what, response.status_code, time.monotonic() - started, response.text)


def alone(client: httpx.Client, key: str, what: str) -> float:
    """Seconds an import (a dry run) or a group creation takes with nothing else going on:
    the best of three, after one to warm up."""
    took = []
    for n in range(1000, 1004):
        answer = post(client, key, what, n, dry_run=True)
        assert answer.status in (201, 202), answer.body
        took.append(answer.seconds)
    return min(took[1:])


def test_imports_and_writes_at_once_all_succeed_and_none_waits_long(
    live: Live, caplog: pytest.LogCaptureFixture
) -> None:
    """15 imports and 30 group creations sent at once all succeed and none waits 3 s (on a
    machine too loaded to serve them one by one within 3 s: no longer than that, and half
    again); the worker beside them never fails a pass and still finishes the imports and
    sends the mail."""
    caplog.set_level(logging.WARNING, logger="userdesk.worker")
    calls = [("import", n) for n in range(IMPORTS)] + [("group", n) for n in range(WRITES)]
    together = threading.Barrier(len(calls))

    def at_once(what: str, n: int) -> Answer:
        together.wait()
        return post(client, live.key, what, n)

    worker = Worker(live.database, live.settings)
    working = threading.Thread(target=worker.run, kwargs={"poll_seconds": 0.05}, daemon=True)
    limits = httpx.Limits(max_connections=len(calls), max_keepalive_connections=len(calls))
    with httpx.Client(base_url=live.url, timeout=10, limits=limits) as client:
        one_by_one = IMPORTS * alone(client, live.key, "import")
        one_by_one += WRITES * alone(client, live.key, "group")
        limit = max(SLOWEST, NOISE * one_by_one)
        working.start()
        try:
            with ThreadPoolExecutor(len(calls)) as pool:
                answers = list(pool.map(lambda call: at_once(*call), calls))
            failed = [a for a in answers if a.status not in (201, 202)]
            assert not failed, [(a.what, a.status, a.body[:200]) for a in failed]
            slowest = max(answers, key=lambda a: a.seconds)
            assert slowest.seconds < limit, (
                f"the slowest answer ({slowest.what}) took {slowest.seconds:.2f} s "
                f"(at most {limit:.2f} s; one by one: {one_by_one:.2f} s); "
                + ", ".join(
                    f"{a.what} {a.seconds:.2f}" for a in sorted(answers, key=lambda a: a.seconds)
                )
            )
            done = _wait_for_the_worker(live.database)
        finally:
            worker.stop()
            working.join(timeout=30)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    assert done == EXPECTED


# imports done (4 dry runs to time one, and the 15), users imported, emails sent
EXPECTED = (4 + IMPORTS, IMPORTS * ROWS, MAILS)


def _wait_for_the_worker(database: Database) -> tuple[int, int, int]:
    """(imports done, users imported, emails sent) once the worker is through with the
    imports and the mail, or after 30 s."""
    deadline = time.monotonic() + 30
    while True:
        with database.unit_of_work(write=False) as db:
            done = db.scalar(select(func.count()).select_from(Job).where(Job.status == "done"))
            imported = db.scalar(
                select(func.count()).select_from(User).where(User.created_via == "import")
            )
            sent = db.scalar(
                select(func.count())
                .select_from(OutboxMessage)
                .where(OutboxMessage.status == "sent")
            )
        counts = (done or 0, imported or 0, sent or 0)
        if counts == EXPECTED or time.monotonic() > deadline:
            return counts
        time.sleep(0.2)
