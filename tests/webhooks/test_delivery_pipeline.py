"""Delivery is a pipeline: an endpoint that hangs holds up its own messages only."""

from __future__ import annotations

import os
import threading
import time

from sqlalchemy import select

from tests.webhooks.conftest import make_endpoint, make_message
from tests.webhooks.receiver import Receiver
from userdesk.config import Settings
from userdesk.db.session import Database
from userdesk.organizations import service as organizations
from userdesk.webhooks.delivery import PER_ENDPOINT, Deliverer
from userdesk.webhooks.models import WebhookAttempt, WebhookMessage

TIMEOUT = 1.5  # the sender's, for this test: the hanging endpoint answers after 4 s


def test_an_endpoint_that_hangs_does_not_hold_up_the_others(
    committed: tuple[Database, Settings], receiver: Receiver, secret: str
) -> None:
    database, settings = committed
    receiver.hang_seconds = 4.0
    with database.unit_of_work() as db:
        org = organizations.create_organization(
            db, slug=f"webhook-workers-{os.urandom(4).hex()}", name="Webhook pipeline"
        )
        slow = make_endpoint(db, settings, org.id, receiver.url_for("127.0.0.1", "/hang"), secret)
        fast = make_endpoint(db, settings, org.id, receiver.url, secret)
        # The slow endpoint's messages first (the longest waiting are claimed first), more
        # of them than the worker has senders; then three users' three messages each to the
        # fast one, each sent only once the one before it is recorded.
        slow_ids = [make_message(db, slow, user_id=n).id for n in range(5 * PER_ENDPOINT)]
        fast_uids = [make_message(db, fast, user_id=n % 3, n=n).uid for n in range(9)]
        slow_id = slow.id
    deliverer = Deliverer(
        database, settings, "pipeline-test", concurrency=2 * PER_ENDPOINT, timeout=TIMEOUT
    )
    stopping = threading.Event()
    started = time.monotonic()
    runner = threading.Thread(target=deliverer.run, args=(stopping,), daemon=True)
    runner.start()
    try:
        received = receiver.wait_for(len(fast_uids), timeout=TIMEOUT * 2)
        took = time.monotonic() - started
        hung = receiver.incoming - len(received)
    finally:
        stopping.set()
        runner.join(timeout=TIMEOUT * 3)
        deliverer.close()

    assert sorted(item.webhook_id for item in received) == sorted(fast_uids)
    assert took < 1.0, f"the fast endpoint's messages took {took:.2f} s"
    assert hung == PER_ENDPOINT  # the hanging endpoint had its slots, no more
    with database.sessions() as db:
        attempts = db.scalars(
            select(WebhookAttempt).where(WebhookAttempt.endpoint_id == slow_id)
        ).all()
        # Stopped: what was in flight timed out and was recorded; the rest let go at once.
        assert len(attempts) == PER_ENDPOINT
        assert all(
            attempt.error and f"timed out after {TIMEOUT:g} s" in attempt.error
            for attempt in attempts
        )
        locked = db.scalars(
            select(WebhookMessage.locked_by).where(WebhookMessage.id.in_(slow_ids))
        ).all()
        assert set(locked) == {None}
        delivered = db.scalars(
            select(WebhookMessage.status).where(WebhookMessage.uid.in_(fast_uids))
        ).all()
        assert set(delivered) == {"delivered"}
