"""The API's documentation renders from this site alone, under the Content-Security-Policy."""

from __future__ import annotations

from playwright.sync_api import ConsoleMessage, Page, Route, expect

from tests.browser.conftest import LiveServer


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
    response = page.goto(f"{live_server.url}/api/v1/docs")
    assert response is not None
    assert "script-src 'self'" in (response.header_value("content-security-policy") or "")
    operations = page.locator(".opblock")
    expect(operations.first).to_be_visible()
    assert operations.count() >= 20
    expect(page.locator(".opblock-summary-path", has_text="/api/v1/users").first).to_be_visible()
    operations.first.locator(".opblock-summary").click()  # opens: the details render too
    expect(page.locator(".opblock-body").first).to_be_visible()
    assert blocked == []
    assert elsewhere == []
