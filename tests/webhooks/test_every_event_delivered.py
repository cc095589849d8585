"""Every event type, fired once by its real action, reaches a real receiver through the
real worker, its signature verified: once each, under the message row's webhook-id."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from tests import factories
from tests.webhooks.conftest import make_endpoint
from tests.webhooks.receiver import Receiver
from tests.webhooks.test_events import SCENARIOS, World
from userdesk.access import service as access
from userdesk.config import Settings
from userdesk.webhooks import catalog
from userdesk.webhooks import service as webhooks
from userdesk.webhooks.delivery import Deliverer
from userdesk.webhooks.models import WebhookMessage


def test_every_event_type_is_delivered_once_and_verified(
    db: Session,
    open_settings: Settings,
    receiver: Receiver,
    secret: str,
    deliverer: Deliverer,
) -> None:
    # Each type in an organization of its own, to an endpoint that wants that type only,
    # subscribed once its arrangements are made: it gets the action's message, no other.
    endpoints: dict[str, int] = {}
    about: dict[str, int | None] = {catalog.TEST: None}  # the user each action changed
    for event_type, (arrange, _) in SCENARIOS.items():
        org = factories.make_organization(db)
        admin = factories.make_admin(db, org)
        world = World(db, org, admin, access.actor_for_user(db, admin))
        act = arrange(world)
        endpoint = make_endpoint(db, open_settings, org.id, receiver.url, secret)
        endpoint.event_types = [event_type]
        db.flush()
        about[event_type] = act()
        endpoints[event_type] = endpoint.id
    org = factories.make_organization(db)
    admin = factories.make_admin(db, org)
    endpoint = make_endpoint(db, open_settings, org.id, receiver.url, secret)
    webhooks.send_test(db, actor=access.actor_for_user(db, admin), endpoint_id=endpoint.id)
    endpoints[catalog.TEST] = endpoint.id
    assert set(endpoints) == set(catalog.EVENT_TYPES)

    while deliverer.run_once():
        pass

    rows = db.scalars(
        select(WebhookMessage).where(WebhookMessage.endpoint_id.in_(endpoints.values()))
    ).all()
    received = receiver.wait_for(len(rows))
    assert receiver.rejected == []  # every signature verified
    got = {item.webhook_id: item for item in received}
    assert len(got) == len(received) == len(rows)  # each once
    for row in rows:  # (a scoring may change the level of the organization's admin too)
        assert row.status == "delivered"
        assert got[row.uid].body["type"] == row.event_type
    for event_type, endpoint_id in endpoints.items():
        [mine] = [
            row
            for row in rows
            if row.endpoint_id == endpoint_id and row.user_id == about[event_type]
        ]
        assert mine.event_type == event_type
        assert got[mine.uid].headers["webhook-id"] == mine.uid
