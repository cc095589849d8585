"""An admin adds a field of their own, fills it for a user, filters the Users list by it
and shows it as a column, in a real browser."""

import re

from playwright.sync_api import Page, expect

from tests.browser.conftest import LiveServer


def sign_in(page: Page, live_server: LiveServer) -> None:
    page.goto(f"{live_server.url}/login")
    page.get_by_label("Email address").fill(live_server.admin_email)
    page.get_by_label("Password").fill(live_server.admin_password)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{live_server.url}/console/users")


def test_a_field_is_added_filled_filtered_by_and_shown_as_a_column(
    page: Page, live_server: LiveServer
) -> None:
    sign_in(page, live_server)
    page.goto(f"{live_server.url}/console/settings/user-fields")
    form = page.get_by_test_id("add-field-form")
    form.get_by_label("Key").fill("tier")
    form.get_by_label("Label").fill("Tier")
    form.get_by_label("Type").select_option("choice")
    form.get_by_label(re.compile("^Options")).fill("Basic\nPremium")
    form.get_by_role("button", name="Add field").click()
    expect(page.get_by_text("Tier").first).to_be_visible()

    # Fill it for one user, on their page's edit form.
    page.goto(f"{live_server.url}/console/users?q=admin%40demo")
    page.locator("[data-testid=users-table] a.user-name").first.click()
    page.get_by_role("link", name="Edit details").click()
    page.get_by_test_id("edit-attributes").get_by_label("Tier").select_option("Premium")
    page.get_by_test_id("edit-dialog").get_by_role("button", name="Save").click()
    expect(page.get_by_test_id("edit-dialog")).to_have_count(0)

    # Show it as a column (kept as the admin's), then filter by it.
    page.goto(f"{live_server.url}/console/users")
    page.get_by_test_id("columns-toggle").click()
    page.get_by_role("checkbox", name=re.compile("^Tier")).check()
    page.get_by_role("button", name="Show columns").click()
    expect(page).to_have_url(re.compile(r"columns=tier"))
    table = page.get_by_test_id("users-table")
    expect(table.locator("th[data-column=tier]")).to_have_text("Tier")
    page.get_by_label("Search users").fill("tier:premium")
    page.get_by_label("Search users").press("Enter")
    expect(page).to_have_url(re.compile(r"q=tier%3Apremium"))
    rows = table.locator("tbody tr[data-user-id]")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("admin@demo.example")
    expect(rows.first.locator("td[data-column=tier]")).to_have_text("Premium")
    # The view is a link: opened anew, the same rows and column.
    page.goto(page.url)
    expect(rows).to_have_count(1)
    expect(rows.first.locator("td[data-column=tier]")).to_have_text("Premium")
