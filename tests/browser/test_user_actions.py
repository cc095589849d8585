import re

from playwright.sync_api import Page, expect

from tests.browser.conftest import LiveServer
from tests.browser.test_users_search import sign_in


def open_user(page: Page, live_server: LiveServer, query: str) -> str:
    page.goto(f"{live_server.url}/console/users?q={query}")
    row = page.locator("[data-testid=users-table] tbody tr[data-user-id]").first
    email = row.locator("td").nth(2).inner_text()
    row.get_by_role("link").first.click()
    return email


def test_the_disable_dialog_asks_for_a_reason_then_disables(
    page: Page, live_server: LiveServer
) -> None:
    sign_in(page, live_server)
    open_user(page, live_server, "status%3Aactive%20role%3AMember")
    page.get_by_test_id("user-actions").get_by_role("button", name="More").click()
    page.get_by_role("link", name="Disable user").click()
    dialog = page.get_by_test_id("disable-dialog")
    expect(dialog).to_contain_text("Please provide a reason")
    dialog.get_by_role("button", name="Disable Account").click()
    expect(page.get_by_test_id("disable-dialog")).to_contain_text("The reason is required")
    page.get_by_label("Please provide a reason").select_option("Security concern")
    page.get_by_role("button", name="Disable Account").click()
    expect(page.get_by_test_id("done")).to_contain_text(re.compile(r"^Disabled \S"))
    expect(page.locator("[data-status=disabled]")).to_be_visible()
    expect(page.get_by_test_id("status-reason")).to_have_text("Security concern")


def test_delete_is_confirmed_by_typing_the_email(page: Page, live_server: LiveServer) -> None:
    sign_in(page, live_server)
    email = open_user(page, live_server, "status%3Apending")
    page.get_by_test_id("user-actions").get_by_role("button", name="More").click()
    page.get_by_role("link", name="Delete user").click()
    confirm = page.get_by_label("Type the user's email to confirm")
    confirm.fill("someone.else@example.com")
    page.get_by_role("button", name="Delete user").click()
    expect(page.get_by_test_id("delete-dialog")).to_contain_text("type the user's email to confirm")
    expect(page.locator("h2 [data-status]")).not_to_have_attribute("data-status", "deleted")
    page.get_by_label("Type the user's email to confirm").fill(email)
    page.get_by_role("button", name="Delete user").click()
    expect(page.locator("h2 [data-status=deleted]")).to_be_visible()
    expect(page.get_by_role("button", name="Reactivate user")).to_be_visible()


def test_apply_to_selected_waits_for_a_ticked_row(page: Page, live_server: LiveServer) -> None:
    sign_in(page, live_server)
    page.goto(f"{live_server.url}/console/users")
    apply = page.get_by_role("button", name="Apply to selected")
    expect(apply).to_be_disabled()
    first = page.locator("[data-testid=users-table] tbody tr[data-user-id] input[type=checkbox]")
    first.first.check()
    expect(apply).to_be_enabled()
    first.first.uncheck()
    expect(apply).to_be_disabled()
