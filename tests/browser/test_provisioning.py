"""An admin creates a SCIM token in Settings > Provisioning, copies it with the Copy button,
and sees the identity provider's request in the log, a hostile path shown as text: in
Chromium, without a console error, a CSP violation or a serious accessibility finding."""

from __future__ import annotations

import httpx
from playwright.sync_api import Browser, ConsoleMessage, Dialog, expect

from tests.browser.conftest import LiveServer
from tests.browser.test_every_page import AXE, AXE_IMPACTS, AXE_RUN
from tests.browser.test_users_search import sign_in


def test_a_token_is_made_copied_used_and_its_request_shown(
    browser: Browser, live_server: LiveServer
) -> None:
    context = browser.new_context(permissions=["clipboard-read", "clipboard-write"])
    page = context.new_page()
    page.set_default_timeout(10_000)
    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            problems.append(message.text)

    def on_dialog(dialog: Dialog) -> None:
        problems.append(f"a script ran: {dialog.message}")
        dialog.dismiss()

    page.on("console", on_console)
    page.on("dialog", on_dialog)
    try:
        sign_in(page, live_server)
        page.goto(f"{live_server.url}/console/settings/provisioning")
        expect(page.get_by_test_id("base-url")).to_have_value(f"{live_server.url}/scim/v2")
        page.get_by_label("Name (the provider, as the audit log will say it)").fill("Okta")
        page.get_by_role("button", name="Create token").click()
        secret = page.get_by_test_id("token-secret").input_value()
        assert secret.startswith("scim_")
        page.get_by_test_id("copy-token").click()
        expect(page.get_by_test_id("copy-token")).to_have_text("Copied")
        assert page.evaluate("navigator.clipboard.readText()") == secret
        answer = httpx.get(
            f"{live_server.url}/scim/v2/Users/<img src=x onerror=alert(1)>",
            headers={"Authorization": f"Bearer {secret}"},
        )
        assert answer.status_code == 404
        # The log is written once the answer has gone out: a moment after the provider has it.
        for _ in range(50):
            page.goto(f"{live_server.url}/console/settings/provisioning?errors=1")
            if page.get_by_test_id("request-row").count():
                break
            page.wait_for_timeout(100)
        row = page.get_by_test_id("request-row").first
        expect(row).to_contain_text("/scim/v2/Users/<img src=x onerror=alert(1)>")
        expect(row.get_by_test_id("outcome")).to_have_text("404 Not found")
        assert secret not in page.content()
        if AXE.exists():
            page.evaluate(AXE.read_text())  # through the DevTools protocol: the CSP allows it
            found = page.evaluate(AXE_RUN, list(AXE_IMPACTS))
            assert found == [], found
    finally:
        context.close()
    assert problems == []
