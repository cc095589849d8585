"""Fixtures of the webhook tests: a verifying receiver, settings that allow it (it is on
127.0.0.1), and endpoints and messages made directly with the models."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, delete
from sqlalchemy.orm import Session

from tests.conftest import make_settings
from tests.webhooks.receiver import Receiver
from userdesk.config import Settings
from userdesk.db.base import utcnow
from userdesk.db.session import Database
from userdesk.organizations.models import Organization
from userdesk.webhooks import signing
from userdesk.webhooks.delivery import Deliverer
from userdesk.webhooks.models import WebhookEndpoint, WebhookMessage
from userdesk.worker import Worker


@pytest.fixture
def secret() -> str:
    return signing.new_secret()


@pytest.fixture
def receiver(secret: str) -> Iterator[Receiver]:
    server = Receiver([secret])
    server.start()
    yield server
    server.stop()


@pytest.fixture
def open_settings(settings: Settings) -> Settings:
    """Settings that let webhooks reach 127.0.0.1, where the receiver is."""
    return dataclasses.replace(settings, webhooks_allow_private=True)


def make_endpoint(
    db: Session, settings: Settings, organization_id: int, url: str, secret: str
) -> WebhookEndpoint:
    endpoint = WebhookEndpoint(
        organization_id=organization_id,
        url=url,
        description="",
        event_types=[],
        enabled=True,
        secret_sealed=signing.seal_secret(settings, secret, organization_id),
    )
    db.add(endpoint)
    db.flush()
    return endpoint


def make_message(
    db: Session, endpoint: WebhookEndpoint, *, user_id: int | None, n: int = 0
) -> WebhookMessage:
    body = {
        "type": "user.updated",
        "timestamp": utcnow().isoformat(),
        "data": {"id": str(user_id), "n": n},
    }
    message = WebhookMessage(
        organization_id=endpoint.organization_id,
        uid=signing.new_message_uid(),
        endpoint_id=endpoint.id,
        event_type="user.updated",
        user_id=user_id,
        body=json.dumps(body, separators=(",", ":")),
        status="pending",
        attempts=0,
        next_attempt_at=utcnow(),
    )
    db.add(message)
    db.flush()
    return message


@pytest.fixture
def committed(engine: Engine, tmp_path: Path) -> Iterator[tuple[Database, Settings]]:
    """A database of committed data (for workers in threads or processes of their own)
    and settings that allow the receiver; the test's organizations (slug
    webhook-workers-…) are deleted afterwards."""
    database = Database(engine)
    settings = dataclasses.replace(
        make_settings(tmp_path, engine.url.render_as_string(hide_password=False)),
        webhooks_allow_private=True,
    )
    yield database, settings
    with database.unit_of_work() as db:
        db.execute(delete(Organization).where(Organization.slug.like("webhook-workers-%")))


@pytest.fixture
def deliverer(database: Database, open_settings: Settings) -> Iterator[Deliverer]:
    """A worker's webhook delivery (its batches run in the test's thread)."""
    made = Worker(database, open_settings).webhooks
    yield made
    made.close()
