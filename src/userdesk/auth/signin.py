"""Signing in with an email and a password."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from userdesk.activity.models import SIGN_IN_LOCKED, ActivityEvent
from userdesk.auth import rules, throttle
from userdesk.auth.secrets import hash_password, password_needs_rehash, verify_password
from userdesk.auth.service import SignedIn, start_session
from userdesk.config import Settings
from userdesk.db.base import utcnow
from userdesk.errors import NotAuthenticated
from userdesk.organizations import service as organizations
from userdesk.organizations.models import Organization
from userdesk.users import lifecycle
from userdesk.users.models import User
from userdesk.users.rules import UserStatus, normalize_email, sign_in_refusal

INVALID_CREDENTIALS = "The email or password is not right."
FAILED_SIGN_IN = throttle.FAILED_SIGN_IN


def sign_in(
    db: Session,
    *,
    settings: Settings,
    email: str,
    password: str,
    ip: str | None = None,
    user_agent: str | None = None,
    replaces_token: str | None = None,
    now: datetime | None = None,
) -> SignedIn:
    """Check EMAIL and PASSWORD and open a new session (the old one, if any, is revoked).

    Failed sign-ins are counted per account: after `rules.LOCK_AFTER` in a row the account
    is locked for a while (longer at each further failure), and while it is, even the right
    password gets the answer a wrong one gets, after the same work.

    Raises:
        RateLimited: too many attempts from IP or for EMAIL (the same for unknown emails).
        NotAuthenticated: unknown email, wrong password, a locked account, or an account
            that may not sign in; the message is the same in the first three cases.
    """
    now = now or utcnow()
    throttle.sign_in(db, ip=ip, email=email, now=now)
    candidates = db.scalars(
        select(User).where(User.email_normalized == normalize_email(email)).order_by(User.id)
    ).all()
    locked = {u.id for u in candidates if _locked_until(db, u, now) is not None}
    user = next((u for u in candidates if verify_password(u.password_hash, password)), None)
    if not candidates:
        verify_password(None, password)  # spend the same time as for a known email
    if user is not None and user.id in locked:
        user = None  # a locked account answers as if the password were wrong
    if user is None:
        for candidate in candidates:
            if candidate.id not in locked:
                _count_failure(db, candidate, now=now, ip=ip)
        raise NotAuthenticated(INVALID_CREDENTIALS, code="auth.invalid_credentials")
    throttle.forget_failed_sign_ins(db, user_id=user.id)
    throttle.signed_in(db, email=email)
    _check_standing(db, user)
    if user.password_hash and password_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return start_session(
        db,
        settings=settings,
        user=user,
        ip=ip,
        user_agent=user_agent,
        replaces_token=replaces_token,
    )


def _account_key(user: User) -> str:
    return throttle.account_key(user.id)


def _locked_until(db: Session, user: User, now: datetime) -> datetime | None:
    """Until when USER's failed sign-ins lock the account, if they do now."""
    failures = throttle.recent_hits(
        db, action=FAILED_SIGN_IN, key=_account_key(user), window=rules.FAILURES_KEPT, now=now
    )
    until = rules.locked_until(failures)
    return until if until is not None and until > now else None


def _count_failure(db: Session, user: User, *, now: datetime, ip: str | None) -> None:
    """Count a failed sign-in of USER, for good (the request's transaction rolls back); one
    that locks the account goes in the user's timeline."""
    failures = 1 + len(
        throttle.recent_hits(
            db, action=FAILED_SIGN_IN, key=_account_key(user), window=rules.FAILURES_KEPT, now=now
        )
    )
    lock = rules.lock_length(failures)
    also: throttle.Rows = []
    if lock:
        properties: dict[str, object] = {
            "failures": failures,
            "until": (now + lock).isoformat(),
            "minutes": int(lock.total_seconds() // 60),
        }
        if ip:
            properties["ip"] = ip
        also.append(
            (
                ActivityEvent,
                {
                    "organization_id": user.organization_id,
                    "user_id": user.id,
                    "type": SIGN_IN_LOCKED,
                    "occurred_at": now,
                    "properties": properties,
                },
            )
        )
    throttle.record(
        db,
        action=FAILED_SIGN_IN,
        key=_account_key(user),
        window=rules.FAILURES_KEPT,
        now=now,
        organization_id=user.organization_id,
        also=also,
    )


def _check_standing(db: Session, user: User) -> None:
    """Refuse, in honest words, someone with the right password who may not sign in.

    A ban whose time is up is lifted here (the worker lifts the others).
    """
    now = utcnow()
    if user.status == UserStatus.BANNED and user.status_until and user.status_until <= now:
        lifecycle.lift_ban(db, user=user, now=now)
    organization = db.get_one(Organization, user.organization_id)
    refusal = sign_in_refusal(
        UserStatus(user.status),
        until=user.status_until,
        reason=user.status_reason,
        validated=user.validated_at is not None,
        require_validation=organizations.requires_validation(organization),
        show_reason=organizations.shows_disable_reason(organization),
    )
    if refusal:
        raise NotAuthenticated(refusal, code="auth.account_unavailable")
