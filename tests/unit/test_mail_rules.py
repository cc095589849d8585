"""Which links an email may show back, and how a token is hidden (pure)."""

from __future__ import annotations

from userdesk.access.rules import ADMINISTRATOR, AGENT, TEAM_ADMINISTRATOR, takeover_problem
from userdesk.mail.rules import (
    EmailKind,
    LinkSecrecy,
    hidden_link,
    hide_tokens,
    link_problem,
    link_secrecy,
)

TOKEN = "Sl1Ex-j6Wf7-78J48rxxLgHwXam3PQTLaGUg75xqwts"


def test_every_link_that_opens_an_account_is_secret_and_an_unknown_kind_too() -> None:
    """Deny by default: only links anyone may open are public."""
    for kind in (
        EmailKind.PASSWORD_RESET,
        EmailKind.WELCOME,
        EmailKind.REGISTRATION,
        EmailKind.VERIFICATION,
        EmailKind.EMAIL_CHANGE,
        EmailKind.EMAIL_CHANGE_NOTICE,
        EmailKind.SIGNUP_CONFIRMATION,
        "a_kind_added_later",
        "",
    ):
        assert link_secrecy(kind) is LinkSecrecy.SECRET, kind
    assert link_secrecy(EmailKind.INVITATION) is LinkSecrecy.INVITATION
    assert link_secrecy(EmailKind.REACTIVATION) is LinkSecrecy.INVITATION
    for kind in (EmailKind.RE_ENGAGEMENT, EmailKind.PASSWORD_CHANGED, EmailKind.OUTREACH):
        assert link_secrecy(kind) is LinkSecrecy.PUBLIC


def test_a_hidden_link_keeps_where_it_goes_but_not_its_token() -> None:
    assert hidden_link(f"https://u.example/password/reset/{TOKEN}") == (
        "https://u.example/password/reset/…"
    )
    assert hidden_link(TOKEN) == "…"


def test_tokens_are_hidden_in_old_text_wherever_they_are() -> None:
    text = f"Go to https://u.example/invite/{TOKEN}.\nOr paste {TOKEN[::-1]} (ann@example.com)"
    hidden = hide_tokens(text)
    assert TOKEN not in hidden
    assert TOKEN[::-1] not in hidden
    assert "https://u.example/invite/…" in hidden
    assert "ann@example.com" in hidden


def test_taking_over_an_account_takes_strictly_more_permissions() -> None:
    """An equal is refused like a stronger one; a weaker one is not."""
    admin = frozenset(ADMINISTRATOR.permissions)
    assert takeover_problem("Ann", frozenset(AGENT.permissions), admin, "x") is None
    same = takeover_problem("Ann", admin, admin, "be impersonated")
    assert same is not None
    assert "holds every permission you hold" in same
    more = takeover_problem("Ann", admin, frozenset(TEAM_ADMINISTRATOR.permissions), "x")
    assert more is not None
    assert "settings.manage" in more


def test_a_wording_may_show_an_account_link_only_as_it_is() -> None:
    """Inside another address, a click would hand the token to that address's owner."""
    link = f"https://u.example/password/reset/{TOKEN}"
    assert link_problem(f"Choose one here:\n\n{link}\n\nThanks.", link) is None
    assert link_problem(f"Here ({link}).", link) is None
    for wording in (
        f"https://evil.example/?next={link}",
        f"https://evil.example/#{link}",
        f"{link}?utm_source=x",
        f"https://evil.example/password/reset/{TOKEN}",
    ):
        assert link_problem(wording, link) is not None, wording
