"""HTTPS through the checked connection: a real TLS receiver on 127.0.0.1 with certificates
of a test authority (trustme); and the bounds of one attempt (the name's lookup, the whole)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.webhooks.conftest import make_endpoint, make_message
from tests.webhooks.receiver import Receiver
from userdesk.config import Settings
from userdesk.db.session import Database
from userdesk.organizations.models import Organization
from userdesk.webhooks import delivery
from userdesk.webhooks.delivery import Deliverer
from userdesk.webhooks.models import WebhookAttempt, WebhookMessage


@pytest.fixture(scope="module")
def authority() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def ca_bundle(authority: trustme.CA, tmp_path: Path) -> str:
    path = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(path))
    return str(path)


def tls_receiver(authority: trustme.CA, secret: str, folder: Path, *names: str) -> Receiver:
    """A receiver speaking HTTPS with a certificate for NAMES, signed by AUTHORITY."""
    pem = folder / f"server-{'-'.join(names)}.pem"
    authority.issue_cert(*names).private_key_and_cert_chain_pem.write_to_path(str(pem))
    receiver = Receiver([secret], certificate_file=str(pem), key_file=str(pem))
    receiver.start()
    return receiver


@pytest.fixture
def localhost_receiver(authority: trustme.CA, secret: str, tmp_path: Path) -> Iterator[Receiver]:
    receiver = tls_receiver(authority, secret, tmp_path, "localhost")
    yield receiver
    receiver.stop()


def deliver_one(
    db: Session,
    database: Database,
    settings: Settings,
    org: Organization,
    url: str,
    secret: str,
    **options: object,
) -> tuple[WebhookMessage, WebhookAttempt]:
    """One message to URL, one attempt by a deliverer made with OPTIONS."""
    endpoint = make_endpoint(db, settings, org.id, url, secret)
    message = make_message(db, endpoint, user_id=1)
    deliverer = Deliverer(database, settings, "tls-test", **options)  # type: ignore[arg-type]
    try:
        assert deliverer.run_once() == 1
    finally:
        deliverer.close()
    [attempt] = db.scalars(select(WebhookAttempt).where(WebhookAttempt.message_id == message.id))
    db.refresh(message)
    return message, attempt


def test_https_to_a_name_is_verified_against_that_name(
    db: Session,
    database: Database,
    org: Organization,
    open_settings: Settings,
    localhost_receiver: Receiver,
    secret: str,
    ca_bundle: str,
) -> None:
    url = localhost_receiver.url_for("localhost")
    assert url.startswith("https://localhost:")
    message, attempt = deliver_one(
        db, database, open_settings, org, url, secret, ca_bundle=ca_bundle
    )
    assert (attempt.status_code, attempt.error) == (204, None)
    assert message.status == "delivered"
    [got] = localhost_receiver.wait_for(1)
    assert got.webhook_id == message.uid
    assert got.headers["host"] == f"localhost:{localhost_receiver.port}"


def test_the_connection_goes_to_the_checked_address_and_tls_to_the_name(
    db: Session,
    database: Database,
    org: Organization,
    open_settings: Settings,
    authority: trustme.CA,
    secret: str,
    ca_bundle: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A name no DNS knows, which only the checked lookup answers: delivered, so the
    connection went to the address checked; its certificate names only that name, so TLS
    verified it against the name."""
    looked_up: list[str] = []

    async def resolve(host: str, port: int) -> list[str]:
        looked_up.append(host)
        return ["127.0.0.1"] if host == "hooks.receiver.test" else []

    monkeypatch.setattr(delivery, "resolve", resolve)
    receiver = tls_receiver(authority, secret, tmp_path, "hooks.receiver.test")
    try:
        _, attempt = deliver_one(
            db,
            database,
            open_settings,
            org,
            receiver.url_for("hooks.receiver.test"),
            secret,
            ca_bundle=ca_bundle,
        )
        assert (attempt.status_code, attempt.error) == (204, None)
        assert receiver.wait_for(1)[0].headers["host"] == f"hooks.receiver.test:{receiver.port}"
    finally:
        receiver.stop()
    assert looked_up == ["hooks.receiver.test"]


def test_a_certificate_for_another_name_is_refused(
    db: Session,
    database: Database,
    org: Organization,
    open_settings: Settings,
    authority: trustme.CA,
    secret: str,
    ca_bundle: str,
    tmp_path: Path,
) -> None:
    receiver = tls_receiver(authority, secret, tmp_path, "other.example")
    try:
        message, attempt = deliver_one(
            db,
            database,
            open_settings,
            org,
            receiver.url_for("localhost"),
            secret,
            ca_bundle=ca_bundle,
        )
    finally:
        receiver.stop()
    assert attempt.status_code is None
    assert attempt.error
    assert "CERTIFICATE_VERIFY_FAILED" in attempt.error
    assert "localhost" in attempt.error  # Hostname mismatch … for 'localhost'
    assert message.status == "pending"
    assert receiver.requests == []


def test_without_the_test_authority_its_certificates_are_refused(
    db: Session,
    database: Database,
    org: Organization,
    open_settings: Settings,
    localhost_receiver: Receiver,
    secret: str,
) -> None:
    """The usual authorities only, as in production: the tests' is not among them."""
    _, attempt = deliver_one(
        db, database, open_settings, org, localhost_receiver.url_for("localhost"), secret
    )
    assert attempt.error
    assert "CERTIFICATE_VERIFY_FAILED" in attempt.error
    assert localhost_receiver.requests == []


def test_a_name_whose_lookup_hangs_fails_within_the_attempts_time(
    db: Session,
    database: Database,
    org: Organization,
    open_settings: Settings,
    secret: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = socket.getaddrinfo

    def slow(host: str, *args: object, **kwargs: object) -> object:
        if host == "slow.receiver.test":
            time.sleep(3)
        return real(host, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", slow)
    started = time.monotonic()
    _, attempt = deliver_one(
        db,
        database,
        open_settings,
        org,
        "http://slow.receiver.test/hooks",
        secret,
        timeout=0.5,
    )
    assert time.monotonic() - started < 2
    assert attempt.error
    assert "resolving slow.receiver.test took longer than the attempt allows" in attempt.error


def test_an_answer_trickling_in_is_cut_at_the_attempts_time_in_all(
    db: Session,
    database: Database,
    org: Organization,
    open_settings: Settings,
    receiver: Receiver,
    secret: str,
) -> None:
    """Each byte comes well within the timeout; the whole does not."""
    receiver.hang_seconds = 4.0  # a byte a second
    started = time.monotonic()
    _, attempt = deliver_one(
        db,
        database,
        open_settings,
        org,
        receiver.url_for("127.0.0.1", "/drip"),
        secret,
        timeout=1.5,
    )
    assert time.monotonic() - started < 3
    assert attempt.error
    assert "timed out after 1.5 s" in attempt.error
