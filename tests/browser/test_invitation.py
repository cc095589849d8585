from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import LiveServer
from tests.browser.test_users_search import sign_in


def test_an_admin_invites_a_colleague_who_follows_the_link_from_the_mailbox(
    page: Page, browser: Browser, live_server: LiveServer
) -> None:
    sign_in(page, live_server)
    page.get_by_role("link", name="Invite users").click()
    page.get_by_label("First name", exact=True).fill("Cleo")
    page.get_by_label("Last name", exact=True).fill("Colleague")
    page.get_by_label("Email", exact=True).fill("cleo@colleague.example")
    page.get_by_role("button", name="Next").click()
    expect(page.get_by_role("heading", name="Segmentation")).to_be_visible()
    page.get_by_role("button", name="Next").click()
    page.get_by_role("button", name="Next").click()
    expect(page.get_by_test_id("email-preview")).to_contain_text("invited you")
    page.get_by_role("button", name="Next").click()
    expect(page.get_by_test_id("invite-summary")).to_contain_text("cleo@colleague.example")
    page.get_by_role("button", name="Create 1 user").click()
    expect(page.get_by_test_id("invited")).to_contain_text("cleo@colleague.example")

    page.goto(f"{live_server.url}/console/mailbox")
    mail = page.get_by_test_id("mail").filter(has_text="cleo@colleague.example")
    mail.get_by_role("button").click()
    link = mail.locator('a[href*="invite"]').get_attribute("href")
    assert link

    colleague = browser.new_context().new_page()
    assert link.startswith(live_server.url)
    colleague.goto(link)
    expect(colleague.get_by_text("cleo@colleague.example")).to_be_visible()
    colleague.get_by_label("New password").fill("a phrase of her very own")
    colleague.get_by_label("Password again").fill("a phrase of her very own")
    colleague.get_by_role("button", name="Accept invitation").click()
    expect(colleague).to_have_url(f"{live_server.url}/me")
    expect(colleague.get_by_role("heading", name="Cleo Colleague")).to_be_visible()
    expect(colleague.get_by_test_id("my-status")).to_have_text("Active")
    colleague.context.close()


def test_the_wizard_will_not_go_on_with_a_bad_email(page: Page, live_server: LiveServer) -> None:
    sign_in(page, live_server)
    page.goto(f"{live_server.url}/console/invite")
    page.get_by_label("Email", exact=True).fill("not-an-email")
    page.get_by_role("button", name="Next").click()
    expect(page.locator("#wizard-problem")).to_contain_text("Check the email")
    expect(page.get_by_role("heading", name="Who are you inviting?")).to_be_visible()
