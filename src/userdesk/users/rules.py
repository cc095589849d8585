"""Pure rules about users: statuses, email normalization, display names."""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from pathlib import Path


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
_CREATED_VIA = re.compile(r"^[a-z0-9](?:[a-z0-9_-]{0,30}[a-z0-9])?$")
CREATED_VIA_MAX_LENGTH = 32


def created_via_problem(value: str) -> str | None:
    """What is wrong with VALUE as a created_via slug, or None."""
    if not _CREATED_VIA.match(value):
        return (
            f"'{value}' is not a slug of lower-case letters, digits, dashes and underscores "
            f"(at most {CREATED_VIA_MAX_LENGTH} characters)"
        )
    return None


# Deliberately simple: one @, no spaces, a dot in the domain. Deliverability is proven by
# the verification email, not by a regex.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
EMAIL_MAX_LENGTH = 254


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
    if not _EMAIL.match(email):
        return f"'{email}' is not an email address"
    return None


PASSWORD_MIN_LENGTH = 8
PASSWORD_MAX_LENGTH = 128
COMMON_PASSWORDS = frozenset((Path(__file__).parent / "common_passwords.txt").read_text().split())


def password_problem(password: str) -> str | None:
    """What is wrong with PASSWORD, or None. Length and commonness; no composition rules."""
    if len(password) < PASSWORD_MIN_LENGTH:
        return f"must be at least {PASSWORD_MIN_LENGTH} characters"
    if len(password) > PASSWORD_MAX_LENGTH:
        return f"must be at most {PASSWORD_MAX_LENGTH} characters"
    if password.lower() in COMMON_PASSWORDS:
        return "is one of the most common passwords: choose another"
    return None


NAME_MAX_LENGTH = 100


def name_problem(name: str) -> str | None:
    if len(name.strip()) > NAME_MAX_LENGTH:
        return f"is longer than {NAME_MAX_LENGTH} characters"
    return None


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
