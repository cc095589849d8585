"""An admin adds a webhook endpoint in Settings > Webhooks, sends the test event, and sees it
delivered: to a real receiver on 127.0.0.1 that verifies the signature with the secret the
page showed once."""

from __future__ import annotations

import dataclasses
import re
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from playwright.sync_api import Page, expect

from tests.browser.conftest import LiveServer, _free_port
from tests.browser.test_users_search import sign_in
from tests.conftest import make_settings
from tests.webhooks.receiver import Receiver
from userdesk import demo
from userdesk.config import Settings
from userdesk.db.migrate import upgrade
from userdesk.db.session import Database
from userdesk.web.app import create_app
from userdesk.webhooks import catalog
from userdesk.webhooks.delivery import Deliverer


@dataclasses.dataclass(frozen=True)
class WebhookServer:
    live: LiveServer
    settings: Settings


@pytest.fixture(scope="module")
def webhook_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebhookServer]:
    """The app served by uvicorn with webhooks allowed to reach 127.0.0.1 (where the test's
    receiver listens); no worker of its own: the test delivers when it wants to."""
    tmp = tmp_path_factory.mktemp("webhooks-live")
    url = f"sqlite:///{tmp}/live.db"
    database = Database.from_url(url)
    upgrade(database.engine)
    with database.unit_of_work() as db:
        made = demo.create_demo_organization(db, count=5, seed=3)
    port = _free_port()
    settings = dataclasses.replace(
        make_settings(tmp, url), base_url=f"http://127.0.0.1:{port}", webhooks_allow_private=True
    )
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, database), host="127.0.0.1", port=port, log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the live server did not start")
        time.sleep(0.05)
    live = LiveServer(f"http://127.0.0.1:{port}", made.admin_email, made.admin_password, database)
    yield WebhookServer(live, settings)
    server.should_exit = True
    thread.join(timeout=10)
    database.dispose()


def test_an_admin_adds_an_endpoint_sends_the_test_event_and_sees_it_delivered(
    page: Page, webhook_server: WebhookServer
) -> None:
    live = webhook_server.live
    port = _free_port()
    hooks_url = f"http://127.0.0.1:{port}/hooks"
    sign_in(page, live)
    page.get_by_role("link", name="Webhooks").click()
    expect(page.get_by_role("heading", name="Webhooks")).to_be_visible()
    page.get_by_label("URL").fill(hooks_url)
    page.get_by_label("Description").fill("The product's access service")
    page.get_by_role("button", name="Add endpoint").click()

    expect(page.get_by_role("heading", name="Endpoint added")).to_be_visible()
    secret = page.get_by_test_id("webhook-secret").input_value()
    assert secret.startswith("whsec_")
    receiver = Receiver([secret], port=port)  # verifies with the secret shown
    receiver.start()
    try:
        page.get_by_test_id("to-endpoint").click()
        expect(page.get_by_test_id("endpoint-url")).to_have_text(hooks_url)
        assert secret not in page.content()  # shown once, never again
        page.get_by_test_id("send-test").click()
        expect(page.get_by_test_id("done")).to_contain_text("A test event is on its way")
        row = page.locator('[data-testid=messages-table] tr[data-event-type="webhook.test"]')
        expect(row.locator("[data-status]")).to_have_attribute("data-status", "pending")

        deliverer = Deliverer(live.database, webhook_server.settings, "browser-test")
        try:
            deadline = time.monotonic() + 10
            while not receiver.received and time.monotonic() < deadline:
                deliverer.run_once()
        finally:
            deliverer.close()
        [got] = receiver.wait_for(1)
        assert got.body["type"] == "webhook.test"
        assert got.body["data"]["message"] == "This is a test event from Userdesk."
        assert receiver.rejected == []

        page.reload()
        expect(row.locator("[data-status]")).to_have_attribute("data-status", "delivered")
        expect(row).to_contain_text(got.webhook_id)
        expect(page.get_by_test_id("endpoint-stats").get_by_test_id("delivered")).to_have_text("1")
        row.get_by_role("link", name="webhook.test").click()
        attempt = page.locator("[data-testid=attempts-table] tr[data-outcome]")
        expect(attempt).to_have_attribute("data-outcome", "delivered")
        expect(attempt).to_contain_text("204")
    finally:
        receiver.stop()


def test_the_api_docs_show_each_event_type_as_a_webhook_with_its_headers_and_body(
    page: Page, webhook_server: WebhookServer
) -> None:
    """OpenAPI 3.1's `webhooks` render in /api/v1/docs: one entry per event type, which
    opens on the signature headers and the body's schema."""
    page.goto(f"{webhook_server.live.url}/api/v1/docs")
    hooks = page.locator(".webhooks")
    expect(hooks.get_by_role("heading", name="Webhooks")).to_be_visible()
    expect(hooks.locator(".opblock")).to_have_count(len(catalog.EVENT_TYPES))
    banned = hooks.locator(".opblock").filter(
        has=page.locator(".opblock-summary-path", has_text=re.compile(r"^user\.banned$"))
    )
    banned.locator(".opblock-summary").click()
    body = banned.locator(".opblock-body")
    expect(body).to_contain_text(catalog.EVENT_TYPES["user.banned"].split("`")[0])
    for header in ("webhook-id", "webhook-timestamp", "webhook-signature"):
        expect(body).to_contain_text(header)
    expect(body).to_contain_text("until")
