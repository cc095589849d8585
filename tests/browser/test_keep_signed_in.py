"""'Keep me signed in' in a real browser: the checkbox, and the cookie that outlives the browser."""

from __future__ import annotations

import time

from playwright.sync_api import Browser, expect
from sqlalchemy import select

from tests import factories
from tests.browser.conftest import LiveServer
from userdesk.access.rules import system_actor
from userdesk.organizations import service as organizations
from userdesk.organizations.models import Organization
from userdesk.web.deps import SESSION_COOKIE


def _allow_keep(live_server: LiveServer, allowed: bool) -> None:
    with live_server.database.unit_of_work() as db:
        org = db.scalars(select(Organization)).first()
        assert org is not None
        organizations.update_settings(
            db, actor=system_actor(org.id, "tests"), keep_signed_in=allowed
        )


def test_a_member_who_ticks_keep_me_signed_in_gets_a_cookie_for_30_days(
    browser: Browser, live_server: LiveServer
) -> None:
    """Once Settings allow it, the box shows; ticked, the session cookie lasts 30 days, and a
    second browser that leaves it unticked gets a cookie that ends with the browser."""
    with live_server.database.unit_of_work() as db:
        org = db.scalars(select(Organization)).first()
        assert org is not None
        email = factories.make_user(db, org, first_name="Kepa", last_name="Kept").email
    _allow_keep(live_server, True)
    try:
        for keep in (True, False):
            context = browser.new_context()
            page = context.new_page()
            page.goto(f"{live_server.url}/login")
            page.get_by_label("Email address").fill(email)
            page.get_by_label("Password").fill(factories.PASSWORD)
            box = page.get_by_label("Keep me signed in on this device")
            expect(box).to_be_visible()
            if keep:
                box.check()
            page.get_by_role("button", name="Sign in").click()
            expect(page).to_have_url(f"{live_server.url}/me")
            (cookie,) = [c for c in context.cookies() if c["name"] == SESSION_COOKIE]
            if keep:
                assert cookie["expires"] > time.time() + 29.9 * 24 * 3600
            else:
                assert cookie["expires"] == -1  # a session cookie
            context.close()
    finally:
        _allow_keep(live_server, False)
