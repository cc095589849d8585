"""/me in a real browser: the forms work without any script of ours."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Browser, expect
from sqlalchemy import select

from tests import factories
from tests.browser.conftest import LiveServer
from userdesk.organizations.models import Organization

NEW_PASSWORD = "mira's brand new passphrase"


def test_a_person_renames_themself_changes_their_password_and_ends_a_session(
    browser: Browser, live_server: LiveServer, tmp_path: Path
) -> None:
    with live_server.database.unit_of_work() as db:
        org = db.scalars(select(Organization)).first()
        assert org is not None
        mira = factories.make_user(db, org, first_name="Mira", last_name="Self")
        email = mira.email
    # JavaScript off: every form posts and the page comes back whole.
    phone = browser.new_context(java_script_enabled=False).new_page()
    tab = browser.new_context(java_script_enabled=False).new_page()
    for page in (phone, tab):
        page.goto(f"{live_server.url}/login")
        page.get_by_label("Email address").fill(email)
        page.get_by_label("Password").fill(factories.PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page).to_have_url(f"{live_server.url}/me")

    tab.get_by_label("First name").fill("Mirabel")
    tab.get_by_role("button", name="Save name").click()
    expect(tab.get_by_test_id("me-message")).to_have_text("Your name is saved.")
    expect(tab.get_by_role("heading", name="Mirabel Self")).to_be_visible()

    password = tab.locator("#password")
    password.get_by_label("Current password").fill("not my password")
    password.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    password.get_by_label("New password again").fill(NEW_PASSWORD)
    password.get_by_role("button", name="Change password").click()
    expect(tab.get_by_test_id("password-current_password-error")).to_have_text(
        "The password is not your current password."
    )

    sessions = tab.get_by_test_id("sessions")
    expect(sessions.get_by_text("This session")).to_be_visible()
    expect(sessions.locator("tbody tr")).to_have_count(2)
    tab.get_by_label("Your password, to sign a session out").fill(factories.PASSWORD)
    sessions.get_by_role("button", name="End").click()
    expect(tab.get_by_test_id("me-message")).to_have_text("That session is signed out.")
    expect(tab.get_by_test_id("sessions").locator("tbody tr")).to_have_count(1)
    tab.screenshot(path=tmp_path / "me.png", full_page=True)
    phone.reload()
    expect(phone).to_have_url(f"{live_server.url}/login?next=/me")
    for page in (phone, tab):
        page.context.close()
