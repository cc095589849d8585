"""The Users page's tab figures arrive after its rows, and follow the search."""

import re

from playwright.sync_api import Page, expect

from tests.browser.conftest import LiveServer


def test_the_tab_figures_load_after_the_rows_and_follow_the_search(
    page: Page, live_server: LiveServer
) -> None:
    page.goto(f"{live_server.url}/login")
    page.get_by_label("Email address").fill(live_server.admin_email)
    page.get_by_label("Password").fill(live_server.admin_password)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{live_server.url}/console/users")
    rows = page.locator("[data-testid=users-table] tbody tr[data-user-id]")
    tabs = page.get_by_test_id("status-tabs")
    all_tab = tabs.get_by_role("link", name=re.compile("^All"))
    expect(all_tab.get_by_test_id("tab-count")).to_have_text(re.compile(r"^\d+$"))
    # The demo's people and its admin colleagues: a page of 50 rows, the figure all of them.
    assert rows.count() == min(int(all_tab.get_by_test_id("tab-count").inner_text()), 50)
    expect(tabs.get_by_test_id("tab-count")).to_have_count(8)
    page.get_by_label("Search users").press_sequentially("admin@demo", delay=30)
    expect(rows).to_have_count(1)
    expect(all_tab.get_by_test_id("tab-count")).to_have_text("1")
    expect(page.get_by_role("button", name="Apply to all 1 matching")).to_be_visible()
