"""What the API and the console show of a user."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from userdesk.users.models import User
from userdesk.users.rules import (
    CREATED_VIA_PATTERN,
    EMAIL_MAX_LENGTH,
    HISTORY_TIME_MAX_LENGTH,
    NAME_MAX_LENGTH,
    UserStatus,
    display_name,
)
from userdesk.validation import ID_PATTERN

# The document states what the service checks (a 400 naming the field) without pydantic
# checking it: the console builds these from its forms and shows the service's message.
AN_ID: dict[str, Any] = {"pattern": ID_PATTERN}
IDS: dict[str, Any] = {"items": {"type": "string", "pattern": ID_PATTERN}}
EMAIL: dict[str, Any] = {"format": "email", "maxLength": EMAIL_MAX_LENGTH}
NAME: dict[str, Any] = {"maxLength": NAME_MAX_LENGTH}

# What a list reads of each user: enough for row_views (which reads them by position),
# nothing more.
LIST_COLUMNS: tuple[Any, ...] = (
    User.id,
    User.email,
    User.first_name,
    User.last_name,
    User.status,
    User.status_reason,
    User.status_until,
    User.email_verified_at.is_not(None).label("email_verified"),
    User.validated_at.is_not(None).label("validated"),
    User.team_id,
    User.created_via,
    User.created_at,
    User.last_login_at,
    User.last_seen_at,
    User.churn_level,
    User.churn_probability,
    User.email_normalized,
)


ATTRIBUTES_DOC = (
    "The organization's own fields (GET /api/v1/user-fields), by key: a string, a number, "
    'true/false, a date "YYYY-MM-DD", one of the options, or a list of them (choices); null '
    "clears one. A key that is not a field, an archived one, one you may not edit or a "
    "value the field does not take is a 400 naming `attributes.<key>` and the value."
)


class UserCreate(BaseModel):
    email: str = Field(json_schema_extra=EMAIL)
    first_name: str = Field(default="", json_schema_extra=NAME)
    last_name: str = Field(default="", json_schema_extra=NAME)
    team_id: str | None = Field(default=None, json_schema_extra=AN_ID)
    group_ids: list[str] = Field(default=[], json_schema_extra=IDS)
    role_ids: list[str] = Field(default=[], json_schema_extra=IDS)
    send_welcome_email: bool = Field(
        default=False,
        strict=True,
        description="Email a link to choose a password (never a password).",
    )
    status: str | None = Field(
        default=None,
        json_schema_extra={"enum": ["active", "pending", None]},
        description=(
            '"pending": a Not Activated user known by email alone (no password), for the host '
            "product; creating one is idempotent on the email (200 with the existing user). "
            'Default "active".'
        ),
    )
    created_via: str | None = Field(
        default=None,
        json_schema_extra={"pattern": CREATED_VIA_PATTERN},
        description="How the user came (a slug of the host's choosing: ticket, chat ...).",
    )
    created_at: str | None = Field(
        default=None,
        json_schema_extra={"maxLength": HISTORY_TIME_MAX_LENGTH},
        description=(
            "When the person really signed up, for a host product backfilling its history: "
            "an ISO 8601 time with an offset (`2024-03-01T09:30:00Z`) or a date (midnight "
            "UTC), not after now nor before 1970. Default: now."
        ),
    )
    password_hash: str | None = Field(
        default=None,
        repr=False,
        json_schema_extra={"maxLength": 255, "writeOnly": True},
        description=(
            "The user's password hash from the system they come from (argon2id/argon2i, "
            "bcrypt, PBKDF2 in PHC or Django form, scrypt PHC, Firebase scrypt, salted SHA-2 "
            "where the organization allows it): they sign in with their password, which is "
            "then re-hashed. Taken only when the user is created; never shown back."
        ),
    )

    attributes: dict[str, Any] | None = Field(default=None, description=ATTRIBUTES_DOC)


BATCH_MAX_USERS = 1000


class UserBatch(BaseModel):
    """Users to create, or to bring up to date, in one request (a host product's sync)."""

    users: list[Any] = Field(
        max_length=BATCH_MAX_USERS,
        description=(
            f"Up to {BATCH_MAX_USERS:,} objects, each as POST /api/v1/users takes them. An item "
            "that is not one is answered by its index, like any other bad item."
        ),
    )


class BatchItemError(BaseModel):
    field: str
    message: str
    code: str


class BatchItemRead(BaseModel):
    """One item's fate: `created`, `unchanged` (its email was there, the fields given were
    as they are), `updated` (they differed: changed as PATCH changes them) or `error`."""

    index: int
    status: str = Field(json_schema_extra={"enum": ["created", "unchanged", "updated", "error"]})
    id: str | None
    error: BatchItemError | None = None


class UserBatchRead(BaseModel):
    items: list[BatchItemRead]
    created: int
    unchanged: int
    updated: int
    errors: int


class UserUpdate(BaseModel):
    """The fields to change; a field left out stays as it is (team_id null: no team)."""

    first_name: str | None = Field(default=None, json_schema_extra=NAME)
    last_name: str | None = Field(default=None, json_schema_extra=NAME)
    email: str | None = Field(
        default=None,
        description="Changes only once the new address is confirmed.",
        json_schema_extra=EMAIL,
    )
    team_id: str | None = Field(default=None, json_schema_extra=AN_ID)
    group_ids: list[str] | None = Field(default=None, json_schema_extra=IDS)
    role_ids: list[str] | None = Field(default=None, json_schema_extra=IDS)
    attributes: dict[str, Any] | None = Field(
        default=None, description=ATTRIBUTES_DOC + " Keys left out stay as they are."
    )


class NamedRef(BaseModel):
    id: str
    name: str


class UserRead(BaseModel):
    """A user as the API shows it (what user_view builds)."""

    id: str
    email: str
    first_name: str
    last_name: str
    name: str
    status: str
    status_label: str
    email_verified: bool
    validated: bool
    team: NamedRef | None
    groups: list[NamedRef]
    roles: list[NamedRef]
    created_via: str
    created_at: datetime
    last_login_at: datetime | None
    last_seen_at: datetime | None
    status_reason: str | None
    banned_until: datetime | None
    churn: str | None
    churn_probability: float | None = Field(
        ge=0,
        le=1,
        description=(
            "The probability behind `churn` (0 to 1, to 3 decimals), from the same scoring; "
            "null: not scored yet. The list sorts by it with `sort=-churn`."
        ),
    )
    # A support agent's "online" or "away" (GET of one user; null for anyone else).
    availability: str | None = None
    attributes: dict[str, Any] = Field(
        default={},
        description=(
            "The organization's own fields the caller may see (not archived ones), by key."
        ),
    )


class UserPageRead(BaseModel):
    """One page of users as the API shows it."""

    items: list[UserRead]
    next_cursor: str | None


UserView = dict[str, Any]


def named(id_: int, name: str) -> dict[str, str]:
    return {"id": str(id_), "name": name}


def user_view(
    user: Any,
    *,
    team: dict[str, str] | None,
    groups: list[dict[str, str]],
    roles: list[dict[str, str]],
) -> UserView:
    """A user as the API and the console show it, from a User (or anything with its
    attributes).

    Plain data, not a model: lists build thousands of these per second, and the API
    serializes them straight to JSON. UserRead documents (and tests check) the shape.
    """
    return _view(
        user.id,
        user.email,
        user.first_name,
        user.last_name,
        user.status,
        user.status_reason,
        user.status_until,
        user.email_verified_at is not None,
        user.validated_at is not None,
        user.created_via,
        user.created_at,
        user.last_login_at,
        user.last_seen_at,
        user.churn_level,
        user.churn_probability,
        team,
        groups,
        roles,
    )


def row_views(
    rows: Sequence[Sequence[Any]],
    *,
    teams: dict[int, dict[str, str]],
    groups: dict[int, list[dict[str, str]]],
    roles: dict[int, list[dict[str, str]]],
) -> list[UserView]:
    """user_view of each of ROWS (of LIST_COLUMNS, their values in their order), with
    the team, groups and roles found by its ids in TEAMS, GROUPS and ROLES (none when
    absent). The same dicts as `_view`'s, in one loop: a list builds 50 to 500 of them
    per request, and a call per row with its 18 values was a tenth of the API's page."""
    statuses = _STATUSES
    views: list[UserView] = []
    append = views.append
    for row in rows:
        (
            id_,
            email,
            first_name,
            last_name,
            status,
            status_reason,
            status_until,
            email_verified,
            validated,
            team_id,
            created_via,
            created_at,
            last_login_at,
            last_seen_at,
            churn_level,
            churn_probability,
        ) = row[:16]
        try:
            value, label = statuses[status]
        except KeyError:
            raise ValueError(f"{status!r} is not a valid UserStatus") from None
        append(
            {
                "id": str(id_),
                "email": email,
                "first_name": first_name,
                "last_name": last_name,
                "name": display_name(first_name, last_name, email),
                "status": value,
                "status_label": label,
                "email_verified": bool(email_verified),
                "validated": bool(validated),
                "team": None if team_id is None else teams.get(team_id),
                "groups": groups.get(id_, []),
                "roles": roles.get(id_, []),
                "created_via": created_via,
                "created_at": created_at,
                "last_login_at": last_login_at,
                "last_seen_at": last_seen_at,
                "status_reason": status_reason,
                "banned_until": status_until if value == _BANNED else None,
                "churn": churn_level,
                "churn_probability": churn_probability,
            }
        )
    return views


# Each status (or its value) -> its value and its label.
_STATUSES: dict[str, tuple[str, str]] = {s.value: (s.value, s.label) for s in UserStatus}


def _view(
    id_: int,
    email: str,
    first_name: str,
    last_name: str,
    status: str,
    status_reason: str | None,
    status_until: datetime | None,
    email_verified: bool,
    validated: bool,
    created_via: str,
    created_at: datetime,
    last_login_at: datetime | None,
    last_seen_at: datetime | None,
    churn_level: str | None,
    churn_probability: float | None,
    team: dict[str, str] | None,
    groups: list[dict[str, str]],
    roles: list[dict[str, str]],
) -> UserView:
    try:
        value, label = _STATUSES[status]
    except KeyError:
        raise ValueError(f"{status!r} is not a valid UserStatus") from None
    return {
        "id": str(id_),
        "email": email,
        "first_name": first_name,
        "last_name": last_name,
        "name": display_name(first_name, last_name, email),
        "status": value,
        "status_label": label,
        "email_verified": email_verified,
        "validated": validated,
        "team": team,
        "groups": groups,
        "roles": roles,
        "created_via": created_via,
        "created_at": created_at,
        "last_login_at": last_login_at,
        "last_seen_at": last_seen_at,
        "status_reason": status_reason,
        "banned_until": status_until if value == _BANNED else None,
        "churn": churn_level,
        "churn_probability": churn_probability,
        # Filled, filtered for the reader, by users.attributes (readable, attach).
        "attributes": {},
    }


_BANNED = UserStatus.BANNED.value


def loaded_user_view(user: User) -> UserView:
    """user_view of a User whose team, groups and roles are loaded."""
    return user_view(
        user,
        team=named(user.team.id, user.team.name) if user.team else None,
        groups=[named(g.id, g.name) for g in user.groups],
        roles=[named(r.id, r.name) for r in user.roles],
    )


@dataclass(frozen=True)
class UserPage:
    items: list[UserView]
    next_cursor: str | None


# Matches a figure needs in a sample before it is scaled into an estimate.
ESTIMATE_FROM = 10


class Count(BaseModel):
    """How many users a figure counts, and how sure it is.

    Exact unless a flag says otherwise. `estimated`: counting every match would have taken
    longer than the counts may, so `count` is scaled from the matches found in an even
    spread of the users (rounded to two significant digits); it may be off either way.
    `capped`: there are at least `count` (those found in that spread, when too few to
    scale), maybe more.
    """

    count: int
    capped: bool = False
    estimated: bool = False

    @property
    def label(self) -> str:
        if self.estimated:
            return f"≈ {self.count:,}"
        return f"{self.count:,}+" if self.capped else f"{self.count:,}"


class UserCounts(BaseModel):
    """The figures of the Users list's tabs: all, each status, and Without Login."""

    all: Count
    statuses: dict[str, Count]
    without_login: Count

    @classmethod
    def exact(cls, total: int, statuses: dict[str, int], without_login: int) -> UserCounts:
        return cls(
            all=Count(count=total),
            statuses={s: Count(count=n) for s, n in statuses.items()},
            without_login=Count(count=without_login),
        )

    @classmethod
    def scaled(
        cls, total: int, statuses: dict[str, int], without_login: int, *, share: float
    ) -> UserCounts:
        """Estimates from counts taken over SHARE (0 < SHARE < 1) of the users.

        A figure found fewer than ESTIMATE_FROM times in that share is too rare to scale
        (one user found in 1 % is not "about 100"): it says "at least" what was found.
        """

        def estimate(found: int) -> Count:
            if found < ESTIMATE_FROM:
                return Count(count=found, capped=True)
            return Count(count=max(found, _two_significant_digits(found / share)), estimated=True)

        return cls(
            all=estimate(total),
            statuses={s: estimate(n) for s, n in statuses.items()},
            without_login=estimate(without_login),
        )


def _two_significant_digits(value: float) -> int:
    """VALUE rounded as an estimate is shown: 61,234.5 -> 61,000; 7.4 -> 7."""
    whole = round(value)
    if whole < 100:
        return whole
    digits = len(str(whole)) - 2
    return round(whole, -digits)
