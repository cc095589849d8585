"""A person registers on an organization open to registration, confirms and signs in."""

from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import LiveServer
from tests.browser.test_users_search import sign_in

PASSPHRASE = "noor's very own passphrase"


def _registration(page: Page, live_server: LiveServer, policy: str) -> None:
    page.goto(f"{live_server.url}/console/settings")
    page.locator("#registration").select_option(policy)
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text("Saved.")


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
        link = mail.locator('a[href*="/signup/confirm/"]').get_attribute("href")
        assert link
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
