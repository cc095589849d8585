"""The console by keyboard alone: "/" to search, Tab to a user, Enter to open them, the
"More" menu's arrows to "Disable user", a reason typed and confirmed; every stop along the
way shows a focus ring. And a dialog keeps the focus inside until Escape closes it, the
focus then back on what opened it. No mouse, no .click()."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select

from tests.browser.conftest import LiveServer, Served, served_demo
from userdesk.access.models import Role
from userdesk.access.service import actor_for_user
from userdesk.users.models import User, UserRole
from userdesk.users.rules import UserStatus
from userdesk.webhooks import service as webhooks
from userdesk.webhooks.schemas import WebhookEndpointCreate

REASON = "Asked by keyboard to pause the account"

# The focused element, described: what it is, its words, and whether a ring shows.
FOCUSED = """() => {
  const el = document.activeElement;
  // A hidden radio of a select group shows its focus on its label.
  const drawn = el.matches('.form-selectgroup-input') ? el.nextElementSibling : el;
  const style = getComputedStyle(drawn);
  const ring = (style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2)
    || (style.boxShadow && style.boxShadow !== 'none');
  return {tag: el.tagName.toLowerCase(), id: el.id, type: el.type || '', name: el.name || '',
          text: (el.innerText || el.value || el.getAttribute('aria-label') || '').trim(),
          href: el.getAttribute('href') || '', ring,
          inModal: !!el.closest('.modal.show')};
}"""


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A demo organization of its own: the test disables one of its users."""
    with served_demo(tmp_path_factory.mktemp("keyboard"), seed=13) as found:
        yield found


@pytest.fixture(scope="module")
def live(served: Served) -> LiveServer:
    return served.live


@pytest.fixture
def tab(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


def focused(page: Page) -> dict[str, str | bool]:
    found: dict[str, str | bool] = page.evaluate(FOCUSED)
    return found


def press_until(page: Page, key: str, wanted: dict[str, str], *, limit: int = 80) -> None:
    """Press KEY until the focused element has each of WANTED's values (text: contains);
    it must show a focus ring there."""
    for _ in range(limit):
        page.keyboard.press(key)
        now = focused(page)
        if all(
            (str(value) in str(now[name])) if name == "text" else now[name] == value
            for name, value in wanted.items()
        ):
            assert now["ring"], f"no visible focus ring on {now}"
            return
    raise AssertionError(f"{key} never reached {wanted}; focus ended on {focused(page)}")


def sign_in_by_keyboard(page: Page, live: LiveServer) -> None:
    page.goto(f"{live.url}/login")
    press_until(page, "Tab", {"id": "email"})
    page.keyboard.type(live.admin_email)
    press_until(page, "Tab", {"type": "password"})
    page.keyboard.type(live.admin_password)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{live.url}/console/users")


def an_active_member(live: LiveServer) -> User:
    """An active user with the Member role alone and a name no one else has."""
    with live.database.unit_of_work() as db:
        member = db.scalars(select(Role.id).where(Role.name == "Member")).one()
        candidates = db.scalars(
            select(User)
            .join(UserRole, UserRole.user_id == User.id)
            .where(User.status == UserStatus.ACTIVE.value, UserRole.role_id == member)
            .order_by(User.id)
        ).all()
        names = [u.name for u in db.scalars(select(User))]
        user = next(u for u in candidates if names.count(u.name) == 1 and u.last_name)
        db.expunge(user)
        return user


def status_of(live: LiveServer, user_id: int) -> tuple[str, str | None]:
    with live.database.unit_of_work() as db:
        user = db.get_one(User, user_id)
        return user.status, user.status_reason


def test_search_open_a_user_and_disable_them_with_a_reason_by_keyboard_alone(
    tab: Page, live: LiveServer
) -> None:
    user = an_active_member(live)
    sign_in_by_keyboard(tab, live)
    rows = tab.locator("[data-testid=users-table] tbody tr[data-user-id]")
    expect(rows.first).to_be_visible()
    # "/" focuses the search box from anywhere but a text field.
    assert focused(tab)["id"] != "q"
    tab.keyboard.press("/")
    assert focused(tab)["id"] == "q"
    expect(tab.locator("#q")).to_have_attribute("aria-keyshortcuts", "/")
    tab.keyboard.type(user.name, delay=20)
    expect(rows).to_have_count(1)
    expect(tab.locator("#q")).to_have_value(user.name)  # "/" was not typed into it
    # Tab to the user's link, Enter to open them.
    press_until(tab, "Tab", {"tag": "a", "text": user.name})
    tab.keyboard.press("Enter")
    tab.wait_for_url(f"{live.url}/console/users/{user.id}")
    # The "More" menu: Enter opens it, the arrows walk its items.
    press_until(tab, "Tab", {"tag": "button", "text": "More"})
    tab.keyboard.press("Enter")
    press_until(tab, "ArrowDown", {"text": "Disable user"}, limit=12)
    tab.keyboard.press("Enter")
    tab.wait_for_url(f"{live.url}/console/users/{user.id}?action=disable")
    expect(tab.get_by_test_id("disable-dialog")).to_be_visible()
    # The dialog opens with the focus on its first field, the reason to choose.
    expect(tab.locator("#reason_choice")).to_be_focused()
    assert focused(tab)["ring"], "the reason has the focus without a ring"
    # The reason, in one's own words, then the button that confirms.
    press_until(tab, "Tab", {"tag": "input", "name": "reason"})
    tab.keyboard.type(REASON)
    press_until(tab, "Tab", {"tag": "button", "text": "Disable Account"}, limit=3)
    tab.keyboard.press("Enter")
    expect(tab.get_by_test_id("done")).to_be_visible()
    expect(tab.locator("h2 [data-status=disabled]")).to_be_visible()
    expect(tab.get_by_test_id("status-reason")).to_have_text(REASON)
    assert status_of(live, user.id) == (UserStatus.DISABLED.value, REASON)


def test_a_dialog_keeps_the_focus_until_escape_and_gives_it_back(
    tab: Page, live: LiveServer
) -> None:
    sign_in_by_keyboard(tab, live)
    tab.goto(f"{live.url}/console/users?q=status%3Aactive")
    press_until(tab, "Tab", {"tag": "button", "text": "Save as segment"})
    tab.keyboard.press("Enter")
    modal = tab.locator("#save-segment")
    expect(modal).to_be_visible()
    expect(tab.locator("#segment-name")).to_be_visible()
    # Tab and Shift+Tab go round inside the dialog, never back to the page beneath.
    for key in ["Tab"] * 8 + ["Shift+Tab"] * 8:
        tab.keyboard.press(key)
        assert focused(tab)["inModal"], f"{key} left the dialog: {focused(tab)}"
    # "/" does not pull the focus out to the search box while the dialog is open.
    press_until(tab, "Tab", {"id": "segment-name"}, limit=8)
    tab.keyboard.press("/")
    assert focused(tab)["id"] == "segment-name"
    tab.keyboard.press("Escape")
    expect(modal).to_be_hidden()
    now = focused(tab)
    assert (now["tag"], now["text"]) == ("button", "Save as segment")
    assert now["ring"], "the focus came back without a ring"


def test_slash_is_typed_as_a_slash_inside_a_text_field(tab: Page, live: LiveServer) -> None:
    sign_in_by_keyboard(tab, live)
    tab.keyboard.press("/")
    tab.keyboard.type("team:")
    tab.keyboard.press("/")
    expect(tab.locator("#q")).to_have_value("team:/")


def test_the_color_switch_on_me_is_worked_by_keyboard_and_wins_over_the_device(
    browser: Browser, live: LiveServer
) -> None:
    """On "System" a light device draws light; Dark chosen with the arrows and saved with
    Enter draws dark on that same device, on every page; back on System, light again."""
    context = browser.new_context(viewport={"width": 1440, "height": 900}, color_scheme="light")
    page = context.new_page()
    page.set_default_timeout(10_000)
    theme = "() => document.documentElement.getAttribute('data-bs-theme')"
    sign_in_by_keyboard(page, live)
    assert page.evaluate(theme) == "light"
    page.goto(f"{live.url}/me")
    press_until(page, "Tab", {"tag": "input", "name": "color_scheme"})
    assert focused(page)["text"] == "system"  # the checked one of the group
    page.keyboard.press("ArrowLeft")  # System -> Dark
    assert focused(page)["text"] == "dark"
    press_until(page, "Tab", {"tag": "button", "text": "Save colors"}, limit=3)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{live.url}/me?done=color_scheme#appearance")
    assert page.evaluate(theme) == "dark"
    page.goto(f"{live.url}/console/users")
    assert page.evaluate(theme) == "dark"
    page.goto(f"{live.url}/me")
    press_until(page, "Tab", {"tag": "input", "name": "color_scheme"})
    page.keyboard.press("ArrowRight")  # Dark -> System
    page.keyboard.press("Enter")  # a radio's Enter submits its form
    page.wait_for_url(f"{live.url}/me?done=color_scheme#appearance")
    assert page.evaluate(theme) == "light"
    context.close()


def test_escape_folds_a_confirmation_away_and_the_focus_returns_to_its_summary(
    tab: Page, served: Served
) -> None:
    """A webhook endpoint's "Delete…" unfolds a confirmation (a <details>): Escape from
    inside it folds it again, the focus back on "Delete…"."""
    live = served.live
    with live.database.unit_of_work() as db:
        admin = db.scalars(select(User).where(User.email == live.admin_email)).one()
        created = webhooks.create_endpoint(
            db,
            actor=actor_for_user(db, admin),
            settings=served.settings,
            data=WebhookEndpointCreate(url="https://hooks.example.com/keyboard"),
        )
        endpoint_id = created.endpoint.id
    sign_in_by_keyboard(tab, live)
    tab.goto(f"{live.url}/console/settings/webhooks/{endpoint_id}")
    details = tab.locator("details:has(summary:text('Delete'))")
    press_until(tab, "Tab", {"tag": "summary"})
    tab.keyboard.press("Enter")
    expect(details).to_have_attribute("open", "")
    press_until(tab, "Tab", {"id": "confirm"}, limit=3)
    tab.keyboard.press("Escape")
    expect(details).not_to_have_attribute("open", "")
    now = focused(tab)
    assert now["tag"] == "summary"
    assert now["ring"], "the focus came back without a ring"


def test_each_dialog_opens_with_the_focus_on_its_first_field(tab: Page, live: LiveServer) -> None:
    """Disable, Ban, Delete and Impersonate on a user's page, a bulk ban, and the "Save as
    segment" modal: what is focused once each opens is its first field (the reason where
    there is one), inside the dialog; sent back with an error, the field in error."""
    user = an_active_member(live)
    sign_in_by_keyboard(tab, live)
    first_fields = {
        "disable": "reason_choice",
        "ban": "ban-reason",
        "delete": None,  # the email typed to confirm, which has no id
        "impersonate": "impersonate-reason",
        "edit": "edit-first_name",
    }
    for action, field in first_fields.items():
        tab.goto(f"{live.url}/console/users/{user.id}?action={action}")
        dialog = tab.get_by_test_id(f"{action}-dialog")
        expect(dialog).to_be_visible()
        if field is None:
            expect(dialog.locator("input[name=confirm_email]")).to_be_focused()
        else:
            expect(tab.locator(f"#{field}")).to_be_focused()
        assert dialog.evaluate("(d) => d.contains(document.activeElement)"), action
    # Banned without a reason: back with the error, the focus on the field in error.
    tab.goto(f"{live.url}/console/users/{user.id}?action=ban")
    expect(tab.locator("#ban-reason")).to_be_focused()
    press_until(tab, "Tab", {"id": "days"}, limit=3)
    tab.keyboard.type("3")
    press_until(tab, "Tab", {"tag": "button", "text": "Ban user"}, limit=4)
    tab.keyboard.press("Enter")
    expect(tab.locator("#ban-reason.is-invalid")).to_be_visible()
    expect(tab.locator("#ban-reason")).to_be_focused()
    assert status_of(live, user.id)[0] == UserStatus.ACTIVE.value
    # A bulk ban: its reason first.
    tab.goto(f"{live.url}/console/bulk?action=ban&q=status%3Aactive")
    expect(tab.locator("#bulk-reason")).to_be_focused()
    # A modal, opened by keyboard: its name field.
    tab.goto(f"{live.url}/console/users?q=status%3Aactive")
    press_until(tab, "Tab", {"tag": "button", "text": "Save as segment"})
    tab.keyboard.press("Enter")
    expect(tab.locator("#save-segment")).to_be_visible()
    expect(tab.locator("#segment-name")).to_be_focused()
