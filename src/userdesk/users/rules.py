"""Pure rules about users: statuses, email normalization, display names."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email

from userdesk.validation import text_problem


class UserStatus(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    DISABLED = "disabled"
    BANNED = "banned"
    TRASHED = "trashed"
    DELETED = "deleted"

    @property
    def label(self) -> str:
        return STATUS_LABELS[self]


STATUS_LABELS = {
    UserStatus.PENDING: "Not Activated",
    UserStatus.ACTIVE: "Active",
    UserStatus.DISABLED: "Disabled",
    UserStatus.BANNED: "Banned",
    UserStatus.TRASHED: "Trashed",
    UserStatus.DELETED: "Deleted",
}

# Statuses whose holders may sign in.
SIGN_IN_STATUSES = frozenset({UserStatus.ACTIVE})


class CreatedVia(StrEnum):
    ADMIN = "admin"
    INVITE = "invite"
    IMPORT = "import"
    SIGNUP = "signup"
    API = "api"
    SCIM = "scim"


# The host product names its own ways in (ticket, chat, community ...): a short slug.
CREATED_VIA_PATTERN = r"^[a-z0-9](?:[a-z0-9_-]{0,30}[a-z0-9])?$"
_CREATED_VIA = re.compile(CREATED_VIA_PATTERN)
CREATED_VIA_MAX_LENGTH = 32


def created_via_problem(value: str) -> str | None:
    """What is wrong with VALUE as a created_via slug, or None."""
    if not _CREATED_VIA.match(value):
        return (
            f"'{value}' is not a slug of lower-case letters, digits, dashes and underscores "
            f"(at most {CREATED_VIA_MAX_LENGTH} characters)"
        )
    return None


# Addresses are checked by email-validator (syntax only: deliverability is proven by the
# verification email), `.test` domains allowed as the tests' and demos' addresses are.
# The common shape below, a subset of what the library accepts (a property test holds it
# to that), skips the library's 80 us: a 100,000-row import checks every row.
_PLAIN_EMAIL = re.compile(
    r"[a-z0-9_+-]+(?:\.[a-z0-9_+-]+)*@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}",
    re.IGNORECASE,
)
_SPECIAL_USE = frozenset(SPECIAL_USE_DOMAIN_NAMES) - {"test"}
EMAIL_MAX_LENGTH = 254
EMAIL_LOCAL_MAX_LENGTH = 64


def normalize_email(email: str) -> str:
    """The form emails are compared in: trimmed and lower-cased."""
    return email.strip().lower()


def email_problem(email: str) -> str | None:
    """What is wrong with EMAIL as an address, or None."""
    email = email.strip()
    if not email:
        return "is required"
    if len(email) > EMAIL_MAX_LENGTH:
        return f"is longer than {EMAIL_MAX_LENGTH} characters"
    if _is_plain_email(email):
        return None
    try:
        validate_email(
            email,
            check_deliverability=False,
            test_environment=True,
            allow_smtputf8=True,
            allow_display_name=False,
            allow_quoted_local=False,
            allow_domain_literal=False,
        )
    except EmailNotValidError as exc:
        return f"{email!r} is not an email address: {str(exc)[:1].lower()}{str(exc)[1:]}"
    return None


def _is_plain_email(email: str) -> bool:
    """Whether EMAIL has the common shape that email-validator is known to accept."""
    if not _PLAIN_EMAIL.fullmatch(email):
        return False
    local, domain = email.rsplit("@", 1)
    return (
        len(local) <= EMAIL_LOCAL_MAX_LENGTH
        and "--" not in domain
        and domain.rsplit(".", 1)[1].lower() not in _SPECIAL_USE
    )


PASSWORD_MIN_LENGTH = 8
PASSWORD_MAX_LENGTH = 128
COMMON_PASSWORDS = frozenset((Path(__file__).parent / "common_passwords.txt").read_text().split())


# Words no password may contain here, whoever sets it (ASVS 6.1.2): the product's name.
# `password_context` adds the person's and the organization's own.
PRODUCT_WORDS = frozenset({"userdesk"})
CONTEXT_WORD_MIN_LENGTH = 4


def password_context(*texts: str) -> frozenset[str]:
    """The words a password may not contain: the product's name, and each word of at least
    CONTEXT_WORD_MIN_LENGTH letters or digits in TEXTS (the local part of the person's
    email, their names, the organization's name and slug)."""
    words = set(PRODUCT_WORDS)
    for text in texts:
        words.update(
            word
            for word in re.split(r"[^0-9a-z]+", text.lower())
            if len(word) >= CONTEXT_WORD_MIN_LENGTH
        )
    return frozenset(words)


def person_password_words(
    email: str, first_name: str, last_name: str, organization_name: str, organization_slug: str
) -> frozenset[str]:
    """The words of `password_context` for a person and their organization."""
    return password_context(
        email.split("@", 1)[0], first_name, last_name, organization_name, organization_slug
    )


def password_problem(password: str, context: frozenset[str] = PRODUCT_WORDS) -> str | None:
    """What is wrong with PASSWORD, or None: its length, being a common password, or
    holding a word of CONTEXT (`password_context`). No composition rules."""
    if len(password) < PASSWORD_MIN_LENGTH:
        return f"must be at least {PASSWORD_MIN_LENGTH} characters"
    if len(password) > PASSWORD_MAX_LENGTH:
        return f"must be at most {PASSWORD_MAX_LENGTH} characters"
    lowered = password.lower()
    if lowered in COMMON_PASSWORDS:
        return "is one of the most common passwords: choose another"
    for word in sorted(context):
        if word in lowered:
            return f"contains '{word}', which is easy to guess here: choose another"
    return None


NAME_MAX_LENGTH = 100


def name_problem(name: str) -> str | None:
    """What is wrong with NAME as a first or last name, or None."""
    if len(name.strip()) > NAME_MAX_LENGTH:
        return f"is longer than {NAME_MAX_LENGTH} characters"
    return text_problem(name)


# When a person's history may begin: a backfilled sign-up, sign-in or visit (created_at,
# last_login_at, last_seen_at) lies between this and now.
HISTORY_STARTS = datetime(1970, 1, 1, tzinfo=UTC)
# An ISO 8601 date, or a time with its offset (Z or +hh:mm): a time without one would be
# read in some zone nobody chose. Seconds and fractions (to microseconds) may be left out.
_HISTORY_TIME = re.compile(
    r"\d{4}-\d{2}-\d{2}"
    r"(?:[Tt ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d{1,6})?)?(?:[Zz]|[+-]\d{2}:?\d{2}))?"
)
HISTORY_TIME_MAX_LENGTH = 40


def history_time(
    value: str, *, now: datetime, not_before: datetime | None = None
) -> tuple[datetime | None, str | None]:
    """VALUE, a past moment of a person's history (an ISO 8601 time with an offset, or a
    date taken as midnight UTC), as a UTC datetime; or None and what is wrong with it:
    malformed, after NOW, before HISTORY_STARTS or before NOT_BEFORE (their sign-up, for a
    sign-in)."""
    shown = (
        ascii(value[:HISTORY_TIME_MAX_LENGTH])
        if text_problem(value)
        else repr(value[:HISTORY_TIME_MAX_LENGTH])
    )
    if len(value) > HISTORY_TIME_MAX_LENGTH or not _HISTORY_TIME.fullmatch(value):
        return None, (
            f"{shown} is not an ISO 8601 time with an offset (2024-03-01T09:30:00Z) or a date"
        )
    try:
        moment = datetime.fromisoformat(value.upper().replace(",", "."))
    except ValueError:
        return None, f"{shown} is not a date that exists"
    moment = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
    if moment > now:
        return None, f"{shown} is in the future: only what already happened can be backfilled"
    if moment < HISTORY_STARTS:
        return None, f"{shown} is before {HISTORY_STARTS.date().isoformat()}"
    if not_before is not None and moment < not_before:
        return None, f"{shown} is before the sign-up ({not_before.isoformat()})"
    return moment, None


def display_name(first_name: str, last_name: str, email: str) -> str:
    """How a person is named on screen: their full name, else their email."""
    name = f"{first_name} {last_name}".strip()
    return name or email


class Action(StrEnum):
    """What an admin can do to a user's standing."""

    VALIDATE = "validate"
    INVALIDATE = "invalidate"
    DISABLE = "disable"
    ENABLE = "enable"
    BAN = "ban"
    UNBAN = "unban"
    TRASH = "trash"
    RESTORE = "restore"
    DELETE = "delete"
    REACTIVATE = "reactivate"
    ACTIVATE = "activate"
    REVOKE_SESSIONS = "revoke-sessions"


class IllegalMove(ValueError):
    """ACTION cannot be applied to a user in status CURRENT."""

    def __init__(self, current: UserStatus, action: Action) -> None:
        super().__init__(f"A user who is {current.label} cannot be given '{action.value}'.")
        self.current = current
        self.action = action


_S = UserStatus
# Where each action may start, and where it leads. None: the status stays; "previous":
# back to the status the user had before (trash, disable and ban remember it).
MOVES: dict[Action, tuple[frozenset[UserStatus], UserStatus | str | None]] = {
    Action.VALIDATE: (frozenset({_S.PENDING, _S.ACTIVE, _S.DISABLED, _S.BANNED}), None),
    Action.INVALIDATE: (frozenset({_S.PENDING, _S.ACTIVE, _S.DISABLED, _S.BANNED}), None),
    Action.DISABLE: (frozenset({_S.PENDING, _S.ACTIVE}), _S.DISABLED),
    Action.ENABLE: (frozenset({_S.DISABLED}), "previous"),
    Action.BAN: (frozenset({_S.PENDING, _S.ACTIVE, _S.DISABLED}), _S.BANNED),
    Action.UNBAN: (frozenset({_S.BANNED}), "previous"),
    Action.TRASH: (frozenset({_S.PENDING, _S.ACTIVE, _S.DISABLED, _S.BANNED}), _S.TRASHED),
    Action.RESTORE: (frozenset({_S.TRASHED}), "previous"),
    Action.DELETE: (
        frozenset({_S.PENDING, _S.ACTIVE, _S.DISABLED, _S.BANNED, _S.TRASHED}),
        _S.DELETED,
    ),
    Action.REACTIVATE: (frozenset({_S.DELETED}), _S.PENDING),
    Action.ACTIVATE: (frozenset({_S.PENDING}), _S.ACTIVE),
    Action.REVOKE_SESSIONS: (frozenset(UserStatus), None),
}
# Moves after which the user may no longer be signed in.
CUTS_ACCESS = frozenset({Action.DISABLE, Action.BAN, Action.TRASH, Action.DELETE})
# Statuses a "previous" move returns to; anything else falls back to active.
RETURNABLE = frozenset({_S.PENDING, _S.ACTIVE, _S.DISABLED, _S.BANNED})


def next_status(
    current: UserStatus, action: Action, previous: UserStatus | None = None
) -> UserStatus:
    """Where ACTION takes a user in CURRENT status (PREVIOUS: the status before the last move).

    Raises:
        IllegalMove: the action does not apply to the current status.
    """
    starts, target = MOVES[action]
    if current not in starts:
        raise IllegalMove(current, action)
    if target is None:
        return current
    if target == "previous":
        if action is Action.ENABLE or action is Action.UNBAN:
            # Back to where they were, but never back into the state being lifted.
            allowed = RETURNABLE - {current}
        else:
            allowed = RETURNABLE
        return previous if previous in allowed else _S.ACTIVE
    return UserStatus(target)


def sign_in_refusal(
    status: UserStatus,
    *,
    until: datetime | None,
    reason: str | None,
    validated: bool,
    require_validation: bool,
    show_reason: bool,
) -> str | None:
    """Why someone who gave the right password may not sign in, in words; None if they may."""
    if status is UserStatus.PENDING:
        return "Your account is not activated yet: follow the link in the email you were sent."
    if status is UserStatus.DISABLED:
        because = f": {reason}" if show_reason and reason else ""
        return f"Your account is disabled{because}. Contact your administrator."
    if status is UserStatus.BANNED:
        when = f" until {until.strftime('%Y-%m-%d %H:%M UTC')}" if until else ""
        return f"Your account is banned{when}."
    if status in (UserStatus.TRASHED, UserStatus.DELETED):
        return "This account was removed. Contact your administrator."
    if require_validation and not validated:
        return "Your account is waiting for an administrator's approval."
    return None
