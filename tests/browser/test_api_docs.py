"""The API's documentation renders from this site alone, under the Content-Security-Policy."""

from __future__ import annotations

import zlib
from typing import Literal

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Route, expect
from sqlalchemy import select

from tests.browser.conftest import LiveServer
from tests.browser.test_every_page import AXE, AXE_IMPACTS, AXE_RUN
from userdesk.users.models import User

# Swagger UI parses 1.4 MB of script, then fetches and draws the document's hundred
# operations: seconds on a busy machine, beyond Playwright's 5 s for an expectation.
DRAWN = 30_000  # ms


def test_the_api_docs_render_every_operation_offline_without_a_policy_violation(
    page: Page, live_server: LiveServer
) -> None:
    """No request leaves the site (a CDN would be blocked offline) and the policy blocks nothing."""
    blocked: list[str] = []
    elsewhere: list[str] = []

    def watch(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text or "unsafe-eval" in message.text:
            blocked.append(message.text)

    def offline(route: Route) -> None:
        if route.request.url.startswith(f"{live_server.url}/"):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    page.on("console", watch)
    page.on("pageerror", lambda error: blocked.append(str(error)))
    page.route("**/*", offline)
    page.set_default_timeout(DRAWN)
    response = page.goto(f"{live_server.url}/api/v1/docs")
    assert response is not None
    assert "script-src 'self'" in (response.header_value("content-security-policy") or "")
    operations = page.locator(".opblock")
    expect(operations.first).to_be_visible(timeout=DRAWN)
    assert operations.count() >= 20
    expect(page.locator(".opblock-summary-path", has_text="/api/v1/users").first).to_be_visible()
    operations.first.locator(".opblock-summary").click()  # opens: the details render too
    expect(page.locator(".opblock-body").first).to_be_visible()
    assert blocked == []
    assert elsewhere == []


# The page's background and the color Swagger UI's title is drawn in, as the eye sees them
# (the stylesheet's filter applied: read from a screenshot's pixels would be slower).
COLORS = """() => {
  const root = document.documentElement;
  const ui = document.querySelector('.swagger-ui');
  return {scheme: root.dataset.colorScheme, theme: root.getAttribute('data-bs-theme'),
          background: getComputedStyle(root).backgroundColor,
          filter: getComputedStyle(ui).filter};
}"""


def _luminance(page: Page) -> float:
    """How light the page looks at a spot of Swagger UI's background (0 black, 255 white)."""
    shot = page.screenshot(clip={"x": 5, "y": 600, "width": 1, "height": 1})
    # A one-pixel PNG: its IDAT chunks hold a filter byte, then the pixel's R, G, B (, A).
    data, at = b"", 8
    while at < len(shot):
        size = int.from_bytes(shot[at : at + 4], "big")
        if shot[at + 4 : at + 8] == b"IDAT":
            data += shot[at + 8 : at + 8 + size]
        at += 12 + size
    red, green, blue = zlib.decompress(data)[1:4]
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


@pytest.mark.parametrize("device", ["light", "dark"])
def test_the_api_docs_follow_the_devices_color_scheme(
    browser: Browser, live_server: LiveServer, device: Literal["light", "dark"]
) -> None:
    """Signed out, the docs are drawn as the device is set: dark on a dark device (no
    policy violation for the script that reads it), light on a light one."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme=device)
    tab = context.new_page()
    blocked: list[str] = []
    tab.on("console", lambda m: blocked.append(m.text) if "Content Security" in m.text else None)
    tab.goto(f"{live_server.url}/api/v1/docs")
    expect(tab.locator(".opblock").first).to_be_visible(timeout=DRAWN)
    colors = tab.evaluate(COLORS)
    assert (colors["scheme"], colors["theme"]) == ("system", device)
    assert ("invert" in colors["filter"]) == (device == "dark")
    lightness = _luminance(tab)
    assert lightness < 60 if device == "dark" else lightness > 200, lightness
    assert blocked == []
    context.close()


def test_the_api_docs_follow_the_admins_choice_over_the_device(
    browser: Browser, live_server: LiveServer
) -> None:
    """An admin who chose Dark on /me reads the docs dark on a light device; the page says
    so on <html> itself, no script needed."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme="light")
    tab = context.new_page()
    tab.goto(f"{live_server.url}/login")
    tab.get_by_label("Email address").fill(live_server.admin_email)
    tab.get_by_label("Password").fill(live_server.admin_password)
    tab.get_by_role("button", name="Sign in").click()
    tab.wait_for_url(f"{live_server.url}/console/users")
    with live_server.database.unit_of_work() as db:
        admin = db.scalars(select(User).where(User.email == live_server.admin_email)).one()
        admin.color_scheme = "dark"
    try:
        answer = context.request.get(f"{live_server.url}/api/v1/docs")
        assert '<html lang="en" data-color-scheme="dark" data-bs-theme="dark">' in answer.text()
        assert "color-scheme.js" not in answer.text()
        tab.goto(f"{live_server.url}/api/v1/docs")
        expect(tab.locator(".opblock").first).to_be_visible(timeout=DRAWN)
        assert _luminance(tab) < 60
    finally:
        with live_server.database.unit_of_work() as db:
            admin = db.scalars(select(User).where(User.email == live_server.admin_email)).one()
            admin.color_scheme = "system"
        context.close()


@pytest.mark.parametrize(("width", "device"), [(1280, "light"), (1440, "dark")])
def test_the_api_docs_read_to_everyone_opened_tried_and_authorizing(
    browser: Browser, live_server: LiveServer, width: int, device: Literal["light", "dark"]
) -> None:
    """axe-core finds no serious or critical violation in Swagger UI as drawn here, in each
    state its markup changes in: an operation opened and tried (its parameters' controls,
    its answer's code) and the Authorize dialog open, light and dark."""
    if not AXE.exists():
        pytest.fail(f"axe-core is not at {AXE}: run `make setup` (npm ci).")
    context = browser.new_context(viewport={"width": width, "height": 900}, color_scheme=device)
    tab = context.new_page()
    tab.set_default_timeout(DRAWN)
    tab.goto(f"{live_server.url}/api/v1/docs")
    expect(tab.locator(".opblock").first).to_be_visible(timeout=DRAWN)
    expect(tab.locator("#swagger-ui")).not_to_have_attribute("aria-busy", "true")
    listing = tab.locator("#operations-users-list_users_api_v1_users_get")
    listing.locator(".opblock-summary-control").click()
    listing.get_by_role("button", name="Try it out").click()
    listing.get_by_role("button", name="Execute").click()
    expect(listing.locator(".live-responses-table")).to_be_visible()
    # Each parameter's control is named by its parameter, for a screen reader.
    expect(listing.get_by_role("combobox", name="sort")).to_be_visible()
    tab.locator(".scheme-container").get_by_role("button", name="Authorize").click()
    expect(tab.get_by_role("dialog", name="Available authorizations")).to_be_visible()
    tab.evaluate(AXE.read_text())
    assert tab.evaluate(AXE_RUN, list(AXE_IMPACTS)) == []
    assert tab.evaluate("document.documentElement.getAttribute('data-bs-theme')") == device
    context.close()
