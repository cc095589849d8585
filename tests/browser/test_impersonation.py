from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select

from tests import factories
from tests.browser.conftest import LiveServer
from tests.browser.test_users_search import sign_in
from userdesk.organizations.models import Organization


def test_an_admin_generates_the_url_and_opens_it_in_a_separate_browser(
    page: Page, browser: Browser, live_server: LiveServer
) -> None:
    with live_server.database.unit_of_work() as db:
        org = db.scalars(select(Organization)).first()
        assert org is not None
        ida = factories.make_user(db, org, first_name="Ida", last_name="Impersonated")
        ida_id = ida.id
    sign_in(page, live_server)
    page.goto(f"{live_server.url}/console/users/{ida_id}")
    page.get_by_test_id("user-actions").get_by_role("button", name="More").click()
    page.get_by_role("link", name="Impersonate user").click()
    page.get_by_role("button", name="Generate URL").click()
    expect(page.get_by_test_id("problem").or_(page.locator(".invalid-feedback"))).to_contain_text(
        "required"
    )
    page.get_by_label("Reason").fill("Ida reports an empty dashboard")
    page.get_by_role("button", name="Generate URL").click()
    url = page.get_by_test_id("impersonate-url").input_value()
    assert url.startswith(f"{live_server.url}/impersonate/")

    support = browser.new_context()  # another browser: no cookie of the admin's
    other = support.new_page()
    other.goto(url)
    expect(other.get_by_test_id("impersonation-summary")).to_contain_text("Ida Impersonated")
    other.get_by_role("button", name="Continue as Ida Impersonated").click()
    banner = other.get_by_test_id("impersonation-banner")
    expect(banner).to_contain_text("You are signed in as Ida Impersonated by")
    expect(banner).to_contain_text("Ida reports an empty dashboard")
    other.get_by_role("button", name="End impersonation").click()
    expect(other.get_by_test_id("impersonation-ended")).to_be_visible()
    expect(other.get_by_test_id("impersonation-banner")).to_have_count(0)
    other.goto(f"{live_server.url}/me")
    expect(other.get_by_role("heading", name="Sign in to your account")).to_be_visible()
    support.close()

    # The admin's own session went on; the user's timeline tells who did it.
    page.goto(f"{live_server.url}/console/users/{ida_id}")
    expect(page.get_by_test_id("impersonator").first).to_contain_text("impersonated by")
