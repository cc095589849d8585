"""Signing in and out, the sessions behind the cookie, and API keys."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, NamedTuple

from sqlalchemy import Executable, bindparam, select, update
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session

from userdesk.access import service as access
from userdesk.access.models import Role, RolePermission, Team
from userdesk.access.rules import Actor, Permission, RoleScope, missing_to_grant
from userdesk.activity.models import ActivityEvent
from userdesk.audit import service as audit
from userdesk.auth import throttle
from userdesk.auth.models import ApiKey, LoginSession, UserToken
from userdesk.auth.secrets import (
    hash_password,
    hash_token,
    new_token,
)
from userdesk.auth.session_rules import KEPT_TOKEN_PREFIX, ends_at, is_kept_token
from userdesk.config import Settings
from userdesk.db.base import utcnow
from userdesk.db.prepared import Prepared
from userdesk.db.session import best_effort, unless_locked
from userdesk.errors import DomainError, InvalidInput, NotAuthenticated, PermissionDenied
from userdesk.organizations import service as organizations
from userdesk.organizations.models import Organization
from userdesk.users import attributes
from userdesk.users.models import User
from userdesk.users.rules import (
    SIGN_IN_STATUSES,
    display_name,
    password_problem,
    person_password_words,
)

API_KEY_PREFIX = "ud_"
# How often a session's last_seen_at (and the user's) is written while it is used.
TOUCH_EVERY = timedelta(minutes=1)


@dataclass(frozen=True)
class SignedIn:
    """A new session: the token goes in the cookie and is never stored.

    COOKIE_MAX_AGE is in seconds for a kept session ("keep me signed in"), whose cookie
    outlives the browser; None for a cookie that ends with the browser.
    """

    session: LoginSession
    token: str
    user: User
    cookie_max_age: int | None = None


def start_session(
    db: Session,
    *,
    settings: Settings,
    user: User,
    ip: str | None = None,
    user_agent: str | None = None,
    replaces_token: str | None = None,
    keep_signed_in: bool = False,
) -> SignedIn:
    """Open a session for USER, who has just proven who they are (the old one is revoked).

    It lasts as the organization's settings say. KEEP_SIGNED_IN asks for a kept session
    (longer limits, a lasting cookie): granted only when the organization allows it and
    USER has no console access; otherwise the session is an ordinary one.
    """
    if replaces_token:
        sign_out(db, token=replaces_token)
    now = utcnow()
    organization = db.get_one(Organization, user.organization_id)
    kept = keep_signed_in and not _has_console_access(db, user)
    limits = organizations.session_limits(organization, kept=kept)
    session, token = open_session(
        db,
        user=user,
        expires_at=now + limits.lifetime,
        ip=ip,
        user_agent=user_agent,
        kept=limits.kept,
    )
    user.last_login_at = now
    user.last_seen_at = now
    db.add(
        ActivityEvent(
            organization_id=user.organization_id,
            user_id=user.id,
            type="login",
            occurred_at=now,
            properties={"ip": ip} if ip else {},
        )
    )
    db.flush()
    max_age = int(limits.lifetime.total_seconds()) if limits.kept else None
    return SignedIn(session=session, token=token, user=user, cookie_max_age=max_age)


def _has_console_access(db: Session, user: access.Person) -> bool:
    """Whether USER holds a back-office role now (their sessions are never kept ones)."""
    return access.actor_for_user(db, user).has_console_access


def open_session(
    db: Session,
    *,
    user: User,
    expires_at: datetime,
    ip: str | None,
    user_agent: str | None,
    impersonation_id: int | None = None,
    kept: bool = False,
) -> tuple[LoginSession, str]:
    """A new session row for USER, and the token for its cookie (stored only hashed); a
    KEPT session's token says so (`session_rules.KEPT_TOKEN_PREFIX`)."""
    now = utcnow()
    token = (KEPT_TOKEN_PREFIX if kept else "") + new_token()
    session = LoginSession(
        organization_id=user.organization_id,
        token_hash=hash_token(token),
        user_id=user.id,
        csrf_token=new_token(),
        created_at=now,
        last_seen_at=now,
        expires_at=expires_at,
        ip=ip,
        user_agent=(user_agent or "")[:500] or None,
        impersonation_id=impersonation_id,
    )
    db.add(session)
    db.flush()
    return session, token


class SessionUser(NamedTuple):
    """The user of a live session, as a request needs them (`access.Person`)."""

    id: int
    organization_id: int
    first_name: str
    last_name: str
    email: str
    team_id: int | None
    status: str
    color_scheme: str  # how their pages are colored (users.models.COLOR_SCHEMES)
    time_zone: str | None = None  # their business hours' (users.business_hours), if any
    # The custom fields they show as columns of the Users list (users.list_columns).
    list_columns: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return display_name(self.first_name, self.last_name, self.email)


class SessionOrganization(NamedTuple):
    """The organization of a live session: its settings (`organizations.HasSettings`)."""

    id: int
    settings: dict[str, Any]


class LiveSession(NamedTuple):
    """A live session, its user and their organization, read as columns: loading the
    three entities cost a request 0.15 ms, reading these 0.02. A route that needs an
    entity loads it (`web.deps.Auth`)."""

    id: int
    csrf_token: str
    impersonation_id: int | None
    user: SessionUser
    organization: SessionOrganization


_SESSION_COLUMNS = (
    LoginSession.id,
    LoginSession.csrf_token,
    LoginSession.impersonation_id,
    LoginSession.revoked_at,
    LoginSession.created_at,
    LoginSession.last_seen_at,
    LoginSession.expires_at,
    User.id,
    User.organization_id,
    User.first_name,
    User.last_name,
    User.email,
    User.team_id,
    User.status,
    User.color_scheme,
    User.business_hours,
    User.list_columns,
    Organization.settings,
    Organization.user_fields_version,
)


@lru_cache(maxsize=4)
def _session_by_token(dialect: Dialect) -> Prepared:
    """The session behind a token (value `token_hash`), with its user and their
    organization, compiled once per dialect."""
    statement = (
        select(*_SESSION_COLUMNS)
        .join(User, User.id == LoginSession.user_id)
        .join(Organization, Organization.id == LoginSession.organization_id)
        .where(LoginSession.token_hash == bindparam("token_hash"))
    )
    return Prepared.named(dialect, statement, ["token_hash"], fixed=False)


def authenticate_session(
    db: Session, *, settings: Settings, token: str, now: datetime | None = None
) -> LiveSession | None:
    """The live session behind TOKEN, with its user and their organization, or None.

    A session is live while it is not revoked, its user may still sign in (a change of
    status takes effect at once), and it has neither outlived its lifetime nor gone unused
    past its idle limit, both as the organization's settings say now (`session_rules`). A
    kept session of someone who has since gained console access has the ordinary limits.
    Its last use is written at most once a minute, so the idle limit is kept to a minute.
    """
    now = now or utcnow()
    connection = db.connection()
    found = _session_by_token(connection.dialect).rows(
        connection, (), {"token_hash": hash_token(token)}
    )
    if not found:
        return None
    (
        session_id,
        csrf_token,
        impersonation_id,
        revoked_at,
        created_at,
        last_seen_at,
        expires_at,
        *person,
        business_hours,
        list_columns,
        organization_settings,
        fields_version,
    ) = found[0]
    columns = tuple(k for k in list_columns or () if isinstance(k, str))
    user = SessionUser._make((*person, _time_zone(business_hours), columns))
    if revoked_at is not None or user.status not in SIGN_IN_STATUSES:
        return None
    organization = SessionOrganization(user.organization_id, organization_settings)
    attributes.note_version(db, user.organization_id, fields_version)
    # Console access (a query of the user's roles) matters only where kept sessions are on.
    kept = (
        is_kept_token(token)
        and organizations.allows_keep_signed_in(organization)
        and not _has_console_access(db, user)
    )
    limits = organizations.session_limits(organization, kept=kept)
    end = ends_at(
        created_at=created_at, last_seen_at=last_seen_at, expires_at=expires_at, limits=limits
    )
    if end <= now:
        return None
    if now - last_seen_at >= TOUCH_EVERY:
        _touch(
            db,
            update(LoginSession)
            .where(unless_locked(LoginSession.id, session_id))
            .values(last_seen_at=now),
            update(User).where(unless_locked(User.id, user.id)).values(last_seen_at=now),
        )
    return LiveSession(session_id, csrf_token, impersonation_id, user, organization)


def _time_zone(business_hours: Any) -> str | None:
    """The time zone named in a user's BUSINESS_HOURS (as stored), if one is."""
    zone = business_hours.get("time_zone") if isinstance(business_hours, dict) else None
    return zone if isinstance(zone, str) and zone else None


def _touch(db: Session, *statements: Executable) -> None:
    """Record that a session or key was used: a hint, the next request may record it."""
    with best_effort(db):
        for statement in statements:
            db.execute(statement)


def sign_out(db: Session, *, token: str) -> None:
    """Revoke the session behind TOKEN, if there is one."""
    db.execute(
        update(LoginSession)
        .where(LoginSession.token_hash == hash_token(token), LoginSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


def revoke_user_sessions(db: Session, *, user_id: int) -> int:
    """Revoke every live session of a user; returns how many there were."""
    result = db.execute(
        update(LoginSession)
        .where(LoginSession.user_id == user_id, LoginSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class NewApiKey:
    """A created key: the secret is shown once and only its hash is kept."""

    api_key: ApiKey
    secret: str


def create_api_key(
    db: Session, *, actor: Actor, name: str, role: Role, team: Team | None
) -> NewApiKey:
    """A key acting with ROLE (limited to TEAM when the role is team-scoped).

    Raises:
        PermissionDenied: the actor may not manage settings, or may not grant ROLE (over
            TEAM) itself.
        InvalidInput: no name, a team-scoped role without a team, or a team for an
            organization-wide role.
    """
    access.require(actor, Permission.SETTINGS_MANAGE)
    name = name.strip()
    if not name:
        raise InvalidInput("The key needs a name.", fields={"name": "is required"})
    if role.scope == RoleScope.TEAM and team is None:
        raise InvalidInput(
            f"Role '{role.name}' is team-scoped: name the team with --team.",
            fields={"team": f"is required for the team-scoped role '{role.name}'"},
        )
    if role.scope != RoleScope.TEAM and team is not None:
        raise InvalidInput(
            f"Role '{role.name}' covers the whole organization: it takes no team.",
            fields={"team": f"'{team.name}' does not apply to role '{role.name}'"},
        )
    missing = missing_to_grant(
        actor, role.permissions, role_scope=role.scope, team_id=team.id if team else None
    )
    if missing:
        message = f"You cannot give a key '{role.name}': it takes {', '.join(missing)}."
        raise PermissionDenied(message, code="permission_denied", fields={"role": message})
    secret = API_KEY_PREFIX + new_token()
    api_key = ApiKey(
        organization_id=actor.organization_id,
        name=name,
        prefix=secret[:10],
        key_hash=hash_token(secret),
        role_id=role.id,
        team_id=team.id if team else None,
        created_by_id=actor.user_id,
    )
    db.add(api_key)
    db.flush()
    audit.record(
        db,
        actor=actor,
        action="api_key.created",
        target_type="api_key",
        target_id=api_key.id,
        changes={"name": name, "role": role.name, "team": team.name if team else None},
    )
    return NewApiKey(api_key=api_key, secret=secret)


# The key and its role's grants, one row per permission: one statement per API request.
_API_KEY = (
    select(
        ApiKey.id,
        ApiKey.organization_id,
        ApiKey.name,
        ApiKey.team_id,
        ApiKey.revoked_at,
        ApiKey.last_used_at,
        ApiKey.role_id,
        Role.scope,
        RolePermission.permission,
        Organization.user_fields_version,
    )
    .join(Organization, Organization.id == ApiKey.organization_id)
    .join(Role, Role.id == ApiKey.role_id)
    .join(RolePermission, RolePermission.role_id == Role.id, isouter=True)
    .where(ApiKey.key_hash == bindparam("key_hash"))
)


def authenticate_api_key(
    db: Session, *, secret: str, ip: str | None = None, user_agent: str | None = None
) -> Actor:
    """The actor for an API key secret, with what its role grants at this moment.

    Raises:
        NotAuthenticated: the key is unknown or revoked.
    """
    connection = db.connection()
    rows = _api_key_statement(connection.dialect).rows(
        connection, (), {"key_hash": hash_token(secret)}
    )
    if not rows or rows[0][4] is not None:  # revoked_at
        raise NotAuthenticated("The API key is not valid.", code="auth.invalid_api_key")
    key_id, organization_id, name, team_id, _revoked_at, last_used_at = rows[0][:6]
    attributes.note_version(db, organization_id, rows[0][9])
    now = utcnow()
    if last_used_at is None or now - last_used_at >= TOUCH_EVERY:
        _touch(db, update(ApiKey).where(unless_locked(ApiKey.id, key_id)).values(last_used_at=now))
    return access.actor_with_role_grants(
        ((row[6], row[7], row[8]) for row in rows),  # role_id, scope, permission
        organization_id=organization_id,
        team_id=team_id,
        name=f"API key {name}",
        api_key_id=key_id,
        ip=ip,
        user_agent=user_agent,
    )


@lru_cache(maxsize=4)
def _api_key_statement(dialect: Dialect) -> Prepared:
    """_API_KEY compiled once per dialect: it runs on every API request."""
    return Prepared.named(dialect, _API_KEY, ["key_hash"], fixed=True)


class LinkProblem(DomainError):
    """An emailed link that no longer works: unknown, used, expired or revoked."""

    code = "link.invalid"


def issue_user_token(
    db: Session, *, user: User, purpose: str, ttl: timedelta
) -> tuple[str, datetime]:
    """A new single-use link token for USER (earlier unused ones of PURPOSE die)."""
    now = utcnow()
    db.execute(
        update(UserToken)
        .where(
            UserToken.user_id == user.id, UserToken.purpose == purpose, UserToken.used_at.is_(None)
        )
        .values(used_at=now)
    )
    token = new_token()
    expires = now + ttl
    db.add(
        UserToken(
            organization_id=user.organization_id,
            user_id=user.id,
            purpose=purpose,
            token_hash=hash_token(token),
            expires_at=expires,
        )
    )
    db.flush()
    return token, expires


def find_user_token(db: Session, *, token: str, purpose: str) -> tuple[UserToken, User]:
    """The live token and its user.

    Raises:
        LinkProblem: unknown, already used, or expired (the code says which).
    """
    row = db.execute(
        select(UserToken, User)
        .join(User, User.id == UserToken.user_id)
        .where(UserToken.token_hash == hash_token(token), UserToken.purpose == purpose)
    ).first()
    if row is None:
        raise LinkProblem("This link is not valid.", code="link.invalid")
    found, user = row
    if found.used_at is not None:
        raise LinkProblem("This link was already used.", code="link.used")
    if found.expires_at <= utcnow():
        raise LinkProblem("This link has expired.", code="link.expired")
    return found, user


def password_words(db: Session, user: User) -> frozenset[str]:
    """The words USER's password may not contain: theirs, their organization's, ours."""
    organization = db.get_one(Organization, user.organization_id)
    return person_password_words(
        user.email, user.first_name, user.last_name, organization.name, organization.slug
    )


def set_password(db: Session, *, user: User, password: str) -> None:
    """Give USER a new password, end their other sessions and forget failed sign-ins.

    Raises:
        InvalidInput: the password is too short, too long or too common.
    """
    if problem := password_problem(password, password_words(db, user)):
        raise InvalidInput(f"The password {problem}.", fields={"password": problem})
    user.password_hash = hash_password(password)
    revoke_user_sessions(db, user_id=user.id)
    throttle.forget_failed_sign_ins(db, user_id=user.id)
