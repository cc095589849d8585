"""Delivering webhooks to a real receiver on 127.0.0.1 that verifies every signature."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tests import factories
from tests.webhooks.conftest import make_endpoint, make_message
from tests.webhooks.receiver import Receiver
from userdesk.config import Settings
from userdesk.db.base import utcnow
from userdesk.db.session import Database
from userdesk.mail.models import OutboxMessage
from userdesk.organizations.models import Organization
from userdesk.webhooks import delivery, signing
from userdesk.webhooks.delivery import Deliverer
from userdesk.webhooks.models import WebhookAttempt, WebhookMessage


def make_due(db: Session) -> None:
    """Move time on: every pending message is due now."""
    db.execute(
        update(WebhookMessage)
        .where(WebhookMessage.status == "pending")
        .values(next_attempt_at=utcnow() - timedelta(seconds=1))
    )
    db.flush()


def attempts_of(db: Session, message: WebhookMessage) -> list[WebhookAttempt]:
    return list(
        db.scalars(
            select(WebhookAttempt)
            .where(WebhookAttempt.message_id == message.id)
            .order_by(WebhookAttempt.id)
        )
    )


def test_messages_are_delivered_signed_and_recorded(
    db: Session,
    org: Organization,
    open_settings: Settings,
    receiver: Receiver,
    secret: str,
    deliverer: Deliverer,
) -> None:
    endpoint = make_endpoint(db, open_settings, org.id, receiver.url, secret)
    messages = [make_message(db, endpoint, user_id=n, n=n) for n in range(1, 4)]

    assert deliverer.run_once() == 3

    received = receiver.wait_for(3)
    assert sorted(item.webhook_id for item in received) == sorted(m.uid for m in messages)
    by_id = {item.webhook_id: item for item in received}
    for message in messages:
        db.refresh(message)
        assert message.status == "delivered"
        assert message.attempts == 1
        assert message.locked_by is None
        got = by_id[message.uid]
        assert got.headers["content-type"] == "application/json"
        assert got.body["data"]["n"] == message.user_id
        [attempt] = attempts_of(db, message)
        assert (attempt.status_code, attempt.outcome, attempt.error) == (204, "delivered", None)
    assert receiver.rejected == []
    assert deliverer.run_once() == 0  # nothing left


def test_receiver_down_then_up_loses_nothing_and_keeps_each_users_order(
    db: Session,
    org: Organization,
    open_settings: Settings,
    receiver: Receiver,
    secret: str,
    deliverer: Deliverer,
) -> None:
    endpoint = make_endpoint(db, open_settings, org.id, receiver.url, secret)
    ann = [make_message(db, endpoint, user_id=7, n=n) for n in range(4)]
    bob = [make_message(db, endpoint, user_id=8, n=n) for n in range(2)]
    anyone = make_message(db, endpoint, user_id=None)
    receiver.stop()

    # Only the oldest pending message of each user is tried; the others wait behind it.
    assert deliverer.run_once() == 3
    db.expire_all()
    first = ann[0]
    assert first.status == "pending"
    assert first.attempts == 1
    assert first.next_attempt_at is not None
    assert first.next_attempt_at - utcnow() > timedelta(seconds=3)  # the schedule: 5 s
    [attempt] = attempts_of(db, first)
    assert attempt.status_code is None
    assert attempt.outcome == "failed"
    assert attempt.error
    assert "refused" in attempt.error.lower()
    assert ann[1].attempts == 0
    assert deliverer.run_once() == 0  # not due yet

    receiver.start()
    make_due(db)
    for _ in range(10):
        if not deliverer.run_once():
            break
    received = receiver.wait_for(7)
    ids = [item.webhook_id for item in received]
    assert [i for i in ids if i in {m.uid for m in ann}] == [m.uid for m in ann]
    assert [i for i in ids if i in {m.uid for m in bob}] == [m.uid for m in bob]
    assert anyone.uid in ids
    db.expire_all()
    assert {m.status for m in [*ann, *bob, anyone]} == {"delivered"}


def test_a_500_is_retried_under_the_same_webhook_id(
    db: Session,
    org: Organization,
    open_settings: Settings,
    receiver: Receiver,
    secret: str,
    deliverer: Deliverer,
) -> None:
    endpoint = make_endpoint(db, open_settings, org.id, receiver.url, secret)
    message = make_message(db, endpoint, user_id=1)
    receiver.answers.append((500, {}))

    deliverer.run_once()
    db.refresh(message)
    assert (message.status, message.last_status_code) == ("pending", 500)
    db.refresh(endpoint)
    assert endpoint.failing_since is not None
    make_due(db)
    deliverer.run_once()

    assert receiver.requests == [(message.uid, 500), (message.uid, 204)]
    db.refresh(message)
    db.refresh(endpoint)
    assert (message.status, message.attempts) == ("delivered", 2)
    assert endpoint.failing_since is None
    first, second = attempts_of(db, message)
    assert (first.status_code, first.response) == (500, "answer 500")
    assert second.outcome == "delivered"


def test_retry_after_is_honoured(
    db: Session,
    org: Organization,
    open_settings: Settings,
    receiver: Receiver,
    secret: str,
    deliverer: Deliverer,
) -> None:
    endpoint = make_endpoint(db, open_settings, org.id, receiver.url, secret)
    message = make_message(db, endpoint, user_id=1)
    receiver.answers.append((429, {"Retry-After": "120"}))

    deliverer.run_once()

    db.refresh(message)
    assert message.status == "pending"
    assert message.last_status_code == 429
    assert message.next_attempt_at is not None
    assert timedelta(seconds=110) < message.next_attempt_at - utcnow() <= timedelta(seconds=120)


def test_retry_after_reads_seconds_and_dates_within_bounds() -> None:
    now = datetime(2026, 12, 6, 19, 0, tzinfo=UTC)
    assert delivery.parse_retry_after("30", now) == timedelta(seconds=30)
    assert delivery.parse_retry_after("Sun, 06 Dec 2026 19:10:00 GMT", now) == timedelta(minutes=10)
    assert delivery.parse_retry_after("soon", now) is None
    assert delivery.retry_wait(1, timedelta(seconds=1)) == timedelta(seconds=5)  # never sooner
    assert delivery.retry_wait(1, timedelta(days=9)) == timedelta(days=1)  # bounded
    assert delivery.retry_wait(len(delivery.RETRY_SCHEDULE)) is None  # spent
    total = sum(delivery.RETRY_SCHEDULE, timedelta())
    assert timedelta(days=2, hours=12) < total < timedelta(days=3, hours=12)


def test_410_gone_disables_the_endpoint_and_stops_its_messages(
    db: Session,
    org: Organization,
    open_settings: Settings,
    receiver: Receiver,
    secret: str,
    deliverer: Deliverer,
) -> None:
    endpoint = make_endpoint(db, open_settings, org.id, receiver.url, secret)
    first = make_message(db, endpoint, user_id=1)
    later = make_message(db, endpoint, user_id=1)
    receiver.answers.append((410, {}))

    deliverer.run_once()

    db.refresh(endpoint)
    assert endpoint.enabled is False
    assert endpoint.disabled_reason
    assert "410 Gone" in endpoint.disabled_reason
    db.expire_all()
    assert (first.status, first.last_status_code) == ("failed", 410)
    assert later.status == "failed"
    assert "disabled" in (later.last_error or "")
    assert deliverer.run_once() == 0


def test_three_days_of_failure_disable_the_endpoint_and_email_the_administrators(
    db: Session,
    org: Organization,
    open_settings: Settings,
    receiver: Receiver,
    secret: str,
    deliverer: Deliverer,
) -> None:
    admin = factories.make_admin(db, org)
    member = factories.make_user(db, org)
    endpoint = make_endpoint(db, open_settings, org.id, receiver.url, secret)
    endpoint.failing_since = utcnow() - delivery.DISABLE_AFTER - timedelta(minutes=1)
    message = make_message(db, endpoint, user_id=member.id)
    receiver.answers.append((503, {}))

    deliverer.run_once()

    db.refresh(endpoint)
    assert endpoint.enabled is False
    assert endpoint.disabled_reason
    assert "every attempt failed since" in endpoint.disabled_reason
    db.refresh(message)
    assert message.status == "failed"
    emails = db.scalars(select(OutboxMessage).where(OutboxMessage.organization_id == org.id)).all()
    assert [email.recipient for email in emails] == [admin.email]
    assert emails[0].payload["kind"] == "webhook_disabled"
    assert endpoint.url in emails[0].payload["text"]
    assert f"/console/settings/webhooks/{endpoint.id}" in emails[0].payload["text"]


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", "refused: 127.0.0.1 is a loopback address"),
        ("10.0.0.1", "refused: 10.0.0.1 is a private address"),
        ("169.254.169.254", "refused: 169.254.169.254 is a cloud metadata address"),
        ("localhost", "is a loopback address"),  # a name that resolves to loopback
    ],
)
def test_private_addresses_are_refused_at_connect_time(
    db: Session,
    org: Organization,
    settings: Settings,
    database: Database,
    receiver: Receiver,
    secret: str,
    host: str,
    expected: str,
) -> None:
    assert settings.webhooks_allow_private is False
    endpoint = make_endpoint(db, settings, org.id, f"http://{host}:{receiver.port}/hooks", secret)
    message = make_message(db, endpoint, user_id=1)
    closed = Deliverer(database, settings, "ssrf-test")
    try:
        closed.run_once()
    finally:
        closed.close()
    [attempt] = attempts_of(db, message)
    assert attempt.status_code is None
    assert attempt.error
    assert expected in attempt.error
    assert receiver.requests == []
    db.refresh(message)
    assert message.status == "pending"
    assert message.last_error == attempt.error


def test_a_name_resolving_to_loopback_is_delivered_when_the_setting_allows_it(
    db: Session,
    org: Organization,
    open_settings: Settings,
    receiver: Receiver,
    secret: str,
    deliverer: Deliverer,
) -> None:
    endpoint = make_endpoint(
        db, open_settings, org.id, f"http://localhost:{receiver.port}/hooks", secret
    )
    message = make_message(db, endpoint, user_id=1)
    deliverer.run_once()
    assert [item.webhook_id for item in receiver.wait_for(1)] == [message.uid]
    assert receiver.received[0].headers["host"] == f"localhost:{receiver.port}"


@pytest.mark.parametrize(
    ("address", "refused"),
    [
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:169.254.169.254", "cloud metadata"),
        ("fd00:ec2::254", "cloud metadata"),
        ("fc00::1", "unique-local"),
        ("fe80::1", "link-local"),
        ("0.0.0.0", "unspecified"),  # noqa: S104 - an address refused, not bound
        ("224.0.0.1", "multicast"),
        ("192.168.1.1", "private"),
        ("100.64.0.1", "not a public address"),
        ("240.0.0.1", "reserved"),
    ],
)
def test_addresses_that_are_not_public_are_refused(address: str, refused: str) -> None:
    problem = delivery.refusal(address)
    assert problem
    assert refused in problem


def test_public_addresses_are_allowed() -> None:
    assert delivery.refusal("93.184.216.34") is None
    assert delivery.refusal("2606:2800:220:1:248:1893:25c8:1946") is None


def test_during_a_rotation_either_secret_verifies(
    db: Session,
    org: Organization,
    open_settings: Settings,
    deliverer: Deliverer,
) -> None:
    old, new = signing.new_secret(), signing.new_secret()
    both = Receiver([old, new])
    both.start()
    try:
        endpoint = make_endpoint(db, open_settings, org.id, both.url, new)
        endpoint.previous_secret_sealed = signing.seal_secret(open_settings, old, org.id)
        endpoint.previous_secret_expires_at = utcnow() + timedelta(hours=24)
        make_message(db, endpoint, user_id=1)
        deliverer.run_once()
        [got] = both.wait_for(1)
        assert got.verified_with == (0, 1)  # the old secret verifies, and so does the new
        assert len(got.headers["webhook-signature"].split(" ")) == 2

        endpoint.previous_secret_expires_at = utcnow() - timedelta(seconds=1)  # grace over
        db.flush()
        make_message(db, endpoint, user_id=2)
        deliverer.run_once()
        assert both.wait_for(2)[1].verified_with == (1,)
    finally:
        both.stop()


def test_a_paused_endpoint_gets_nothing_until_resumed(
    db: Session,
    org: Organization,
    open_settings: Settings,
    receiver: Receiver,
    secret: str,
    deliverer: Deliverer,
) -> None:
    endpoint = make_endpoint(db, open_settings, org.id, receiver.url, secret)
    endpoint.enabled = False
    message = make_message(db, endpoint, user_id=1)
    assert deliverer.run_once() == 0
    endpoint.enabled = True
    db.flush()
    assert deliverer.run_once() == 1
    assert receiver.wait_for(1)[0].webhook_id == message.uid


def test_an_endpoint_deleted_while_its_messages_were_sent_leaves_the_rest_recorded(
    db: Session,
    org: Organization,
    open_settings: Settings,
    receiver: Receiver,
    secret: str,
) -> None:
    kept = make_endpoint(db, open_settings, org.id, receiver.url, secret)
    dropped = make_endpoint(db, open_settings, org.id, receiver.url, secret)
    make_message(db, kept, user_id=1)
    make_message(db, dropped, user_id=1)
    claimed = delivery.claim(db, "w", utcnow())
    assert len(claimed) == 2
    outcomes = [
        delivery.Outcome(
            target=delivery.Target(
                m.id, m.organization_id, m.endpoint_id, m.uid, receiver.url, m.body, (secret,)
            ),
            at=utcnow(),
            status_code=200,
            duration_ms=3,
            response="",
            error=None,
            retry_after=None,
        )
        for m in claimed
    ]
    db.delete(dropped)
    db.flush()

    delivery.record(db, "w", outcomes, open_settings)

    [attempt] = db.scalars(select(WebhookAttempt)).all()
    assert attempt.endpoint_id == kept.id
    assert db.scalars(select(WebhookMessage.status)).all() == ["delivered"]
