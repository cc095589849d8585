"""A person registers on an organization open to registration, confirms and signs in."""

import re

from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select

from tests.browser.conftest import LiveServer
from tests.browser.test_users_search import sign_in
from userdesk.mail.models import OutboxMessage

PASSPHRASE = "an unusual passphrase of her own"


def _registration(page: Page, live_server: LiveServer, policy: str) -> None:
    page.goto(f"{live_server.url}/console/settings")
    page.locator("#registration").select_option(policy)
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text("Saved.")


def _confirmation_link(live_server: LiveServer, to: str) -> str:
    """The link of the email as it reaches its owner (the Mailbox hides it from admins)."""
    with live_server.database.unit_of_work(write=False) as db:
        message = db.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.recipient == to)
            .order_by(OutboxMessage.id.desc())
        ).first()
        assert message is not None
        found = re.search(r"https?://\S+/signup/confirm/\S+", message.payload["text"])
    assert found
    return found.group(0)


def test_a_person_registers_confirms_from_the_email_and_signs_in(
    page: Page, browser: Browser, live_server: LiveServer
) -> None:
    sign_in(page, live_server)
    _registration(page, live_server, "open")
    person = browser.new_context().new_page()
    try:
        person.goto(f"{live_server.url}/signup")
        person.get_by_label("First name").fill("Noor")
        person.get_by_label("Last name").fill("Signup")
        person.get_by_label("Email address").fill("noor@signup.example")
        person.get_by_label("Password").fill(PASSPHRASE)
        person.get_by_role("button", name="Create my account").click()
        expect(person.get_by_test_id("signup-sent")).to_contain_text("noor@signup.example")

        page.goto(f"{live_server.url}/console/mailbox")
        mail = page.get_by_test_id("mail").filter(has_text="noor@signup.example")
        mail.get_by_role("button").click()
        expect(mail.get_by_test_id("link-hidden-why")).to_contain_text("never shown")
        expect(mail.locator('a[href*="/signup/confirm/"]')).to_have_count(0)
        link = _confirmation_link(live_server, "noor@signup.example")  # as its owner reads it
        assert link.startswith(live_server.url)

        person.goto(link)
        person.get_by_role("button", name="Confirm and activate").click()
        expect(person.get_by_role("status")).to_contain_text("Your account is confirmed")
        person.get_by_label("Password").fill(PASSPHRASE)
        person.get_by_role("button", name="Sign in").click()
        expect(person).to_have_url(f"{live_server.url}/me")
        expect(person.get_by_test_id("my-status")).to_have_text("Active")
    finally:
        person.context.close()
        _registration(page, live_server, "closed")
