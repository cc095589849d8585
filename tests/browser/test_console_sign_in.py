import re

from playwright.sync_api import Page, expect

from tests.browser.conftest import LiveServer


def test_an_admin_signs_in_and_sees_the_users_list(page: Page, live_server: LiveServer) -> None:
    page.goto(f"{live_server.url}/console/users")
    expect(page).to_have_url(re.compile(r"/login\?next="))
    page.get_by_label("Email address").fill(live_server.admin_email)
    page.get_by_label("Password").fill(live_server.admin_password)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{live_server.url}/console/users")
    expect(page.get_by_role("heading", name="Users")).to_be_visible()
    rows = page.locator("[data-testid=users-table] tbody tr[data-user-id]")
    expect(rows.first).to_be_visible()
    assert rows.count() >= 41  # the demo people and the admin
    expect(page.get_by_test_id("signed-in-as")).to_contain_text(live_server.admin_email)
    expect(page.locator("[data-status=active]").first).to_be_visible()
    # The stylesheet from the npm registry is served and applied.
    assert page.evaluate("getComputedStyle(document.body).fontFamily") != ""
    assert page.request.get(f"{live_server.url}/static/vendor/tabler.min.css").ok


def test_a_wrong_password_shows_an_error_and_no_console(
    page: Page, live_server: LiveServer
) -> None:
    page.goto(f"{live_server.url}/login")
    page.get_by_label("Email address").fill(live_server.admin_email)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_test_id("login-error")).to_have_text("The email or password is not right.")
    page.goto(f"{live_server.url}/console/users")
    expect(page).to_have_url(re.compile(r"/login"))


def test_signing_out_ends_the_session(page: Page, live_server: LiveServer) -> None:
    page.goto(f"{live_server.url}/login")
    page.get_by_label("Email address").fill(live_server.admin_email)
    page.get_by_label("Password").fill(live_server.admin_password)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{live_server.url}/console/users")
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{live_server.url}/login")
    page.goto(f"{live_server.url}/console/users")
    expect(page).to_have_url(re.compile(r"/login\?next="))
