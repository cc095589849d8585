from playwright.sync_api import ConsoleMessage, Page, expect

from tests.browser.conftest import LiveServer
from tests.browser.test_users_search import sign_in


def test_the_pages_run_under_the_content_security_policy_without_a_violation(
    page: Page, live_server: LiveServer
) -> None:
    """Chromium reports every blocked script, style or eval on the console; none is."""
    blocked: list[str] = []

    def watch(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text or "unsafe-eval" in message.text:
            blocked.append(message.text)

    page.on("console", watch)
    page.on("pageerror", lambda error: blocked.append(str(error)))
    sign_in(page, live_server)
    page.get_by_placeholder("Search").first.fill("a")  # an htmx request and swap
    for path in ("/console/users", "/console/invite", "/console/audit", "/me"):
        page.goto(f"{live_server.url}{path}")
        expect(page.locator("body")).to_be_visible()
    assert blocked == []
