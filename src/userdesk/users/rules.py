"""Pure rules about users: statuses, email normalization, display names."""

from __future__ import annotations

import re
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
