import re

from playwright.sync_api import Page, expect

from tests.browser.conftest import LiveServer
from tests.browser.test_users_search import sign_in


def test_a_row_menu_offers_the_rows_actions_and_applies_them_to_its_user(
    page: Page, live_server: LiveServer
) -> None:
    sign_in(page, live_server)
    page.goto(f"{live_server.url}/console/users?q=status%3Aactive%20role%3AMember")
    row = page.locator("[data-testid=users-table] tbody tr[data-user-id]").nth(1)
    user_id = row.get_attribute("data-user-id")
    email = row.locator("td").nth(2).inner_text()
    page.get_by_role("button", name=f"Actions for {email}").click()
    menu = row.locator(".dropdown-menu")
    expect(menu).to_be_visible()
    expect(menu.get_by_role("link", name="Disable user")).to_have_attribute(
        "href", f"/console/users/{user_id}?action=disable"
    )
    expect(menu.get_by_role("button", name="Enable user")).to_have_count(0)
    menu.get_by_role("button", name="Revoke sessions").click()
    expect(page).to_have_url(re.compile(rf"/console/users/{user_id}\?done=revoke-sessions"))


def test_rows_shown_by_a_search_get_their_menus_too(page: Page, live_server: LiveServer) -> None:
    sign_in(page, live_server)
    rows = page.locator("[data-testid=users-table] tbody tr[data-user-id]")
    expect(rows.first).to_be_visible()
    page.get_by_label("Search users").press_sequentially("status:trashed", delay=20)
    expect(page).to_have_url(re.compile(r"q=status%3Atrashed"))
    expect(rows.first.locator("[data-status]")).to_have_attribute("data-status", "trashed")
    first = rows.first
    email = first.locator("td").nth(2).inner_text()
    page.get_by_role("button", name=f"Actions for {email}").click()
    expect(first.get_by_role("button", name="Restore user")).to_be_visible()
    expect(first.get_by_role("link", name="Disable user")).to_have_count(0)
