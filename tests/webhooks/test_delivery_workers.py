"""Several workers on one database, with committed data as in production: every message
delivered at least once (once, normally), each user's in order, and a worker killed
mid-delivery loses nothing."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, text, update

from tests.conftest import make_settings
from tests.mail.smtp import free_port
from tests.webhooks.conftest import make_endpoint, make_message
from tests.webhooks.receiver import Receiver
from userdesk.config import Settings
from userdesk.db.base import utcnow
from userdesk.db.engine import make_engine
from userdesk.db.migrate import upgrade
from userdesk.db.session import Database
from userdesk.organizations import service as organizations
from userdesk.webhooks.delivery import PER_ENDPOINT
from userdesk.webhooks.models import WebhookAttempt, WebhookMessage
from userdesk.worker import Worker

MESSAGES = 1000
USERS = 250  # four messages each


def queue(
    database: Database, settings: Settings, receiver: Receiver, secret: str, count: int, users: int
) -> list[tuple[str, int | None]]:
    """COUNT committed messages to RECEIVER, about USERS users in turn: (uid, user)s."""
    with database.unit_of_work() as db:
        org = organizations.create_organization(
            db, slug=f"webhook-workers-{os.urandom(4).hex()}", name="Webhook workers"
        )
        endpoint = make_endpoint(db, settings, org.id, receiver.url, secret)
        made = [make_message(db, endpoint, user_id=n % users + 1, n=n) for n in range(count)]
        return [(message.uid, message.user_id) for message in made]


def undelivered(database: Database, uids: list[str]) -> int:
    with database.sessions() as db:
        return int(
            db.scalar(
                select(func.count())
                .select_from(WebhookMessage)
                .where(WebhookMessage.uid.in_(uids), WebhookMessage.status != "delivered")
            )
            or 0
        )


def test_two_workers_deliver_every_message_at_least_once_in_each_users_order(
    engine: Engine, committed: tuple[Database, Settings], receiver: Receiver, secret: str
) -> None:
    database, settings = committed
    sent = queue(database, settings, receiver, secret, MESSAGES, USERS)
    uids = [uid for uid, _ in sent]
    # Two workers as two processes would be: each its own connections and write queue.
    databases = [Database(engine), Database(engine)]
    workers = [Worker(db, settings) for db in databases]
    threads = [threading.Thread(target=worker.run, daemon=True) for worker in workers]
    for thread in threads:
        thread.start()
    try:
        receiver.wait_for(MESSAGES, timeout=120)
        deadline = time.monotonic() + 30
        while undelivered(database, uids) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        for worker in workers:
            worker.stop()
        for thread in threads:
            thread.join(timeout=30)

    assert undelivered(database, uids) == 0
    got = receiver.ids()
    assert set(got) == set(uids)  # each at least once
    assert receiver.rejected == []  # every one verified
    # Duplicates (none expected here) could only repeat a webhook-id already sent.
    assert len(got) - len(set(got)) == len(receiver.requests) - len(set(uids))
    by_user: dict[int | None, list[str]] = defaultdict(list)
    order = dict(sent)
    for uid in dict.fromkeys(got):  # first arrivals
        by_user[order[uid]].append(uid)
    for user, arrived in by_user.items():
        assert arrived == [uid for uid, of in sent if of == user]
    with database.sessions() as db:  # once each, in the normal case
        attempts = db.scalar(
            select(func.count())
            .select_from(WebhookAttempt)
            .join(WebhookMessage, WebhookMessage.id == WebhookAttempt.message_id)
            .where(WebhookMessage.uid.in_(uids))
        )
    assert attempts == MESSAGES


def test_a_worker_killed_mid_delivery_loses_nothing(
    engine: Engine,
    committed: tuple[Database, Settings],
    receiver: Receiver,
    secret: str,
    tmp_path: Path,
) -> None:
    database, settings = committed
    sent = queue(database, settings, receiver, secret, 5 * PER_ENDPOINT, 5 * PER_ENDPOINT)
    uids = [uid for uid, _ in sent]
    search_path = ""
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            search_path = str(conn.execute(text("SHOW search_path")).scalar()).replace(" ", "")
    receiver.hold.set()  # the requests arrive, and wait
    receiver.drop_held = True
    process = subprocess.Popen(  # noqa: S603 - this Python, this project's module
        [
            sys.executable,
            "-m",
            "tests.webhooks.worker_process",
            engine.url.render_as_string(hide_password=False),
            search_path,
            str(tmp_path),
        ],
        cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while receiver.incoming < PER_ENDPOINT and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.2)
        assert receiver.incoming == PER_ENDPOINT  # in flight: as many as one endpoint may have
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    receiver.hold.clear()  # the held requests end unanswered: the worker never knew

    with database.sessions() as db:
        leased = dict(
            db.execute(
                select(WebhookMessage.uid, WebhookMessage.locked_until).where(
                    WebhookMessage.uid.in_(uids), WebhookMessage.locked_until.is_not(None)
                )
            ).all()
        )
    # What the dead worker claimed: what it was sending, and some more to send next.
    assert PER_ENDPOINT <= len(leased) < len(uids)
    assert all(utcnow() < lease <= utcnow() + timedelta(minutes=1) for lease in leased.values())
    survivor = Worker(Database(engine), settings).webhooks
    try:
        while survivor.run_once():  # the rest, at once; the dead worker's leases hold
            pass
        assert undelivered(database, uids) == len(leased)
        with database.unit_of_work() as db:  # move time on: the leases run out
            db.execute(
                update(WebhookMessage)
                .where(WebhookMessage.uid.in_(uids))
                .values(locked_until=utcnow() - timedelta(seconds=1))
            )
        tried = 0
        while tried < len(leased) and (more := survivor.run_once()):
            tried += more
        assert tried == len(leased)
    finally:
        survivor.close()
    assert sorted(item.webhook_id for item in receiver.wait_for(len(uids))) == sorted(uids)
    assert undelivered(database, uids) == 0


@pytest.mark.parametrize(
    "command", [["worker"], ["serve", "--workers", "1", "--port"]], ids=["worker", "serve"]
)
def test_userdesk_worker_and_serve_deliver(
    command: list[str], tmp_path: Path, receiver: Receiver, secret: str
) -> None:
    """What an operator runs delivers webhooks: `userdesk worker`, and `userdesk serve`
    with the worker it runs beside the server."""
    url = f"sqlite:///{tmp_path / 'userdesk.db'}"
    engine = make_engine(url)
    upgrade(engine)
    settings = dataclasses.replace(make_settings(tmp_path, url), webhooks_allow_private=True)
    database = Database(engine)
    if command[0] == "serve":
        command = [*command, str(free_port())]
    environ = {
        **os.environ,
        "USERDESK_DATABASE_URL": url,
        "USERDESK_VAR_DIR": str(tmp_path),
        "USERDESK_SECRET_KEY": settings.secret_key,
        "USERDESK_WEBHOOKS_ALLOW_PRIVATE": "1",
        "USERDESK_CHURN_EVERY_HOURS": "0",
        "PYTHONFAULTHANDLER": "1",  # SIGABRT prints every thread's stack (see below)
    }
    log = tmp_path / "process.log"
    with log.open("wb") as output:
        process = subprocess.Popen(  # noqa: S603 - this project's command
            [str(Path(sys.executable).with_name("userdesk")), *command],
            env=environ,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        [(uid, _)] = queue(database, settings, receiver, secret, 1, 1)
        assert [item.webhook_id for item in receiver.wait_for(1, timeout=90)] == [uid]
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            # Generous: on a loaded machine the server may still be starting when told
            # to stop.
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGABRT)  # the faulthandler's stacks, into the log
            process.wait(timeout=10)
            pytest.fail(f"{command[0]} did not stop on SIGTERM:\n{log.read_text()[-6000:]}")
        finally:
            engine.dispose()
