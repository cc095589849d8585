"""Email templates: the built-in wording, and rendering in a sandbox. Pure."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment


class EmailKind(StrEnum):
    INVITATION = "invitation"
    WELCOME = "welcome"
    VERIFICATION = "verification"
    PASSWORD_RESET = "password_reset"  # noqa: S105 - a name, not a password
    REACTIVATION = "reactivation"
    EMAIL_CHANGE = "email_change"
    EMAIL_CHANGE_NOTICE = "email_change_notice"
    IMPERSONATION_NOTICE = "impersonation_notice"
    RE_ENGAGEMENT = "re_engagement"
    OUTREACH = "outreach"  # to a support agent: reach out to a user at risk
    SIGNUP_CONFIRMATION = "signup_confirmation"
    SIGNUP_EXISTING = "signup_existing"
    REGISTRATION = "registration"
    PASSWORD_CHANGED = "password_changed"  # noqa: S105 - a name, not a password
    WEBHOOK_DISABLED = "webhook_disabled"  # to the Administrators: an endpoint kept failing

    @property
    def label(self) -> str:
        return self.value.replace("_", " ").capitalize()


class LinkSecrecy(StrEnum):
    """What the link of an email gives whoever holds it, and so who may see it back."""

    PUBLIC = "public"  # a page anyone may open: sign in, forgot password, a console page
    INVITATION = "invitation"  # opens an invited person's account: shown to who may resend it
    SECRET = "secret"  # opens or changes an account: never shown back, to anyone  # noqa: S105


# Deny by default: a kind not named here holds a secret link. (The email change notice
# is rendered with the confirmation link in its context, so its wording could show it.)
PUBLIC_LINK_KINDS = frozenset(
    {
        EmailKind.RE_ENGAGEMENT,
        EmailKind.OUTREACH,
        EmailKind.IMPERSONATION_NOTICE,
        EmailKind.PASSWORD_CHANGED,
        EmailKind.SIGNUP_EXISTING,
        EmailKind.WEBHOOK_DISABLED,
    }
)
INVITATION_KINDS = frozenset({EmailKind.INVITATION, EmailKind.REACTIVATION})
HIDDEN = "…"


def link_secrecy(kind: str) -> LinkSecrecy:
    """How secret the link of an email of KIND (a kind's value, maybe unknown) is."""
    if kind in PUBLIC_LINK_KINDS:
        return LinkSecrecy.PUBLIC
    if kind in INVITATION_KINDS:
        return LinkSecrecy.INVITATION
    return LinkSecrecy.SECRET


def split_link(link: str) -> tuple[str, str]:
    """LINK's address up to its last part, and that last part: the token."""
    head, _, token = link.rstrip("/").rpartition("/")
    return head, token


def hidden_link(link: str) -> str:
    """LINK with its last part (the token) replaced by an ellipsis."""
    head, _ = split_link(link)
    return f"{head}/{HIDDEN}" if head else HIDDEN


# For text written before emails kept a copy without their link: token paths and any long
# run of token characters (a token is 43 of them) are hidden.
_TOKEN_PATH = re.compile(
    r"(/(?:invite|verify|password/reset|signup/confirm|email/confirm|impersonate)/)"
    r"[^\s<>\"'/?#]+"
)
_TOKEN_LIKE = re.compile(r"[A-Za-z0-9_\-]{20,}")


def link_problem(text: str, link: str) -> str | None:
    """What is wrong with how TEXT, rendered with LINK, carries it: a wording may show the
    link of an email that opens an account only as it is, never inside another address
    (where a click would hand the token to someone else). None when it is fine."""
    _, token = split_link(link)
    for url in _URL.findall(text):
        if token in url and url.rstrip(".,;:!?)]}'") != link:
            return "may show {{ link }} only as it is, not inside another address"
    return None


def hide_tokens(text: str) -> str:
    """TEXT with every link token in it replaced by an ellipsis."""
    return _TOKEN_LIKE.sub(HIDDEN, _TOKEN_PATH.sub(lambda m: m.group(1) + HIDDEN, text))


@dataclass(frozen=True)
class Template:
    subject: str
    body: str


# Every template may use: user (first_name, last_name, name, email), organization (name),
# link (the one action of the email), expires (when the link stops working), inviter.
DEFAULT_TEMPLATES = {
    EmailKind.INVITATION: Template(
        "{{ inviter }} invited you to {{ organization.name }}",
        "Hello {{ user.first_name or user.email }},\n\n"
        "{{ inviter }} invited you to join {{ organization.name }}. Choose a password to "
        "accept the invitation:\n\n{{ link }}\n\n"
        "The link works once and until {{ expires }}.",
    ),
    EmailKind.WELCOME: Template(
        "Welcome to {{ organization.name }}",
        "Hello {{ user.first_name or user.email }},\n\n"
        "An account was made for you at {{ organization.name }}. Choose your password here:"
        "\n\n{{ link }}\n\nThe link works once and until {{ expires }}.",
    ),
    EmailKind.VERIFICATION: Template(
        "Confirm your email address",
        "Hello {{ user.first_name or user.email }},\n\n"
        "Please confirm that {{ user.email }} is your address:\n\n{{ link }}\n\n"
        "The link works once and until {{ expires }}.",
    ),
    EmailKind.PASSWORD_RESET: Template(
        "Reset your password",
        "Hello {{ user.first_name or user.email }},\n\n"
        "Someone asked to reset the password of {{ user.email }} at {{ organization.name }}. "
        "If it was you, choose a new one here:\n\n{{ link }}\n\n"
        "The link works once and until {{ expires }}. If it was not you, ignore this email.",
    ),
    EmailKind.REACTIVATION: Template(
        "Your {{ organization.name }} account is back",
        "Hello {{ user.first_name or user.email }},\n\n"
        "Your account at {{ organization.name }} was reactivated. Choose a password to "
        "sign in again:\n\n{{ link }}\n\nThe link works once and until {{ expires }}.",
    ),
    EmailKind.WEBHOOK_DISABLED: Template(
        "A webhook endpoint of {{ organization.name }} was disabled",
        "Hello {{ user.first_name or user.email }},\n\n"
        "Userdesk disabled the webhook endpoint {{ webhook.url }}: {{ webhook.reason }}\n\n"
        "Its messages are kept as failed. Once the endpoint answers again, enable it and "
        "replay them:\n\n{{ link }}",
    ),
}

DEFAULT_TEMPLATES |= {
    EmailKind.EMAIL_CHANGE: Template(
        "Confirm your new email address",
        "Hello {{ user.first_name or user.email }},\n\n"
        "Your email at {{ organization.name }} is about to become {{ new_email }}. Confirm "
        "that this address is yours:\n\n{{ link }}\n\n"
        "The link works once and until {{ expires }}. Until then, nothing changes.",
    ),
    EmailKind.EMAIL_CHANGE_NOTICE: Template(
        "Your email address is being changed",
        "Hello {{ user.first_name or user.email }},\n\n"
        "Someone asked to change the email of your {{ organization.name }} account from "
        "{{ user.email }} to {{ new_email }}. It changes only once the new address is "
        "confirmed. If you did not expect this, contact your administrator.",
    ),
    EmailKind.IMPERSONATION_NOTICE: Template(
        "{{ admin }} accessed your {{ organization.name }} account",
        "Hello {{ user.first_name or user.email }},\n\n"
        "{{ admin }} of {{ organization.name }} signed in to your account as you, to help: "
        "{{ reason }}.\nThe access ends by itself within an hour. If you have questions, "
        "contact your administrator.",
    ),
    EmailKind.RE_ENGAGEMENT: Template(
        "We miss you at {{ organization.name }}",
        "Hello {{ user.first_name or user.email }},\n\n"
        "It has been a while since you visited {{ organization.name }}. Here is the way "
        "back in:\n\n{{ link }}\n\nIf something stopped working for you, just reply: we "
        "read every answer.",
    ),
}

DEFAULT_TEMPLATES |= {
    EmailKind.SIGNUP_CONFIRMATION: Template(
        "Confirm your registration at {{ organization.name }}",
        "Hello {{ user.first_name or user.email }},\n\n"
        "Someone, probably you, registered {{ user.email }} at {{ organization.name }}. "
        "Follow this link to confirm your address and activate your account:\n\n{{ link }}"
        "\n\nThe link works once and until {{ expires }}. If you did not register, ignore "
        "this email: no account is activated without it.",
    ),
    EmailKind.SIGNUP_EXISTING: Template(
        "Someone tried to register with your address",
        "Hello {{ user.first_name or user.email }},\n\n"
        "Someone tried to register at {{ organization.name }} with {{ user.email }}, which "
        "already has an account. If it was you, sign in, or choose a new password here:"
        "\n\n{{ link }}\n\nIf it was not you, ignore this email: nothing changed.",
    ),
    EmailKind.REGISTRATION: Template(
        "Your account at {{ organization.name }} is ready",
        "Hello {{ user.first_name or user.email }},\n\n"
        "{{ organization.name }} opened an account for {{ user.email }}. Choose a password "
        "to complete your registration and sign in:\n\n{{ link }}\n\n"
        "The link works once and until {{ expires }}.",
    ),
}

DEFAULT_TEMPLATES |= {
    EmailKind.PASSWORD_CHANGED: Template(
        "Your password was changed",
        "Hello {{ user.first_name or user.email }},\n\n"
        "The password of your {{ organization.name }} account ({{ user.email }}) was just "
        "changed. If it was you, there is nothing to do.\n\n"
        "If it was not you, choose a new password now and tell your administrator:\n\n"
        "{{ link }}",
    ),
}

DEFAULT_TEMPLATES |= {
    EmailKind.OUTREACH: Template(
        "Please reach out to {{ at_risk.name }}",
        "Hello {{ user.first_name or user.email }},\n\n"
        "{{ assigned_by }} asked you to reach out to {{ at_risk.name }} ({{ at_risk.email }}), "
        "who may stop using {{ organization.name }}.\n\n"
        "Why: {{ reasons or 'no reason recorded' }}.\n"
        "{% if note %}Note: {{ note }}\n{% endif %}\n"
        "Their page, where you mark the outreach done once you have talked to them:\n\n"
        "{{ link }}",
    ),
}

SAMPLE_CONTEXT: dict[str, Any] = {
    "user": {
        "first_name": "Ann",
        "last_name": "Lee",
        "name": "Ann Lee",
        "email": "ann@example.com",
    },
    "organization": {"name": "Acme"},
    "inviter": "Bob Admin",
    "link": "https://userdesk.example/invite/sample-token",
    "expires": "2026-12-01 12:00 UTC",
    "new_email": "ann.lee@example.org",
    "admin": "Bob Admin",
    "reason": "to check the invoice page they reported",
    "at_risk": {"name": "Carl Diaz", "email": "carl@example.com"},
    "assigned_by": "Bob Admin",
    "webhook": {
        "url": "https://product.example/hooks/userdesk",
        "reason": "every attempt failed for three days",
    },
    "reasons": "No sign-in for 24 days; Activity down 70% vs the previous month",
    "note": "They asked about the new invoices last month.",
}

_env = SandboxedEnvironment(autoescape=False, undefined=StrictUndefined)
_URL = re.compile(r"https?://[^\s<>\"]+")


class TemplateProblem(ValueError):
    """A template that does not render: FIELD (subject or body) and what is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


def render(template: Template, context: dict[str, Any]) -> RenderedEmail:
    """The email TEMPLATE says for CONTEXT, as text and as HTML.

    Raises:
        TemplateProblem: the subject or body does not parse or uses an unknown name.
    """
    parts = {}
    for field in ("subject", "body"):
        source = getattr(template, field)
        try:
            parts[field] = _env.from_string(source).render(context)
        except TemplateError as error:
            raise TemplateProblem(field, f"{field}: {error}") from None
    subject = " ".join(parts["subject"].split())
    return RenderedEmail(subject=subject, text=parts["body"], html=text_to_html(parts["body"]))


def html_paragraphs(text: str) -> str:
    """TEXT as HTML paragraphs with clickable links, everything else escaped."""
    paragraphs = []
    for block in re.split(r"\n\s*\n", text.strip()):
        escaped = html.escape(block)
        linked = _URL.sub(lambda m: f'<a href="{m.group(0)}">{m.group(0)}</a>', escaped)
        paragraphs.append("<p>" + linked.replace("\n", "<br>") + "</p>")
    return "\n".join(paragraphs)


def text_to_html(text: str) -> str:
    """The HTML part of an email whose text part is TEXT."""
    return (
        '<!doctype html><html><body style="font-family: sans-serif; line-height: 1.5">'
        + html_paragraphs(text)
        + "</body></html>"
    )
