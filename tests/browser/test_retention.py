"""The churn card in a real browser: an admin picks an agent (Online or Away) and assigns
the outreach in one click, then marks it done."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page, expect
from sqlalchemy import select

from tests import factories
from tests.browser.conftest import LiveServer
from tests.browser.test_users_search import sign_in
from tests.churn.retention_helpers import scored
from userdesk.organizations.models import Organization
from userdesk.users.models import User


def test_an_admin_assigns_an_outreach_from_the_churn_card_and_closes_it(
    page: Page, live_server: LiveServer, tmp_path: Path
) -> None:
    with live_server.database.unit_of_work() as db:
        admin = db.scalars(select(User).where(User.email == live_server.admin_email)).one()
        org = db.get_one(Organization, admin.organization_id)
        agent = factories.make_user(db, org, first_name="Otto", last_name="Reach", roles=("Agent",))
        agent.business_hours = {"time_zone": "UTC", "weekly": {}}
        user = factories.make_user(db, org, first_name="Quinn", last_name="Quiet", roles=())
        # (no role: the other browser tests pick Members out of the shared demo)
        scored(
            db, org, user, "high", ["No sign-in for 41 days", "Active in 2 of the last 12 weeks"]
        )
        user_id = user.id
    sign_in(page, live_server)
    page.goto(f"{live_server.url}/console/users/{user_id}")
    churn = page.get_by_test_id("churn")
    expect(churn).to_contain_text("No sign-in for 41 days")
    churn.get_by_label("Agent to reach out").select_option(label="Otto Reach · Away")
    churn.get_by_label("Note for the agent").fill("Ask about the reports")
    churn.get_by_role("button", name="Assign to an agent").click()
    expect(page.get_by_test_id("done")).to_contain_text("Assigned an agent to reach out to")
    outreach = page.get_by_test_id("outreach")
    expect(outreach).to_contain_text("Otto Reach")
    expect(outreach).to_contain_text("Ask about the reports")
    page.screenshot(path=str(tmp_path / "retention.png"), full_page=True)
    outreach.get_by_role("button", name="Mark done").click()
    expect(page.get_by_test_id("outreach-done")).to_be_visible()
