"""Signing in with an email and a password."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

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


def sign_in(
    db: Session,
    *,
    settings: Settings,
    email: str,
    password: str,
    ip: str | None = None,
    user_agent: str | None = None,
    replaces_token: str | None = None,
) -> SignedIn:
    """Check EMAIL and PASSWORD and open a new session (the old one, if any, is revoked).

    Raises:
        NotAuthenticated: unknown email, wrong password, or an account that may not sign
            in; the message is the same in every case.
    """
    candidates = db.scalars(
        select(User).where(User.email_normalized == normalize_email(email)).order_by(User.id)
    ).all()
    user = next((u for u in candidates if verify_password(u.password_hash, password)), None)
    if not candidates:
        verify_password(None, password)  # spend the same time as for a known email
    if user is None:
        raise NotAuthenticated(INVALID_CREDENTIALS, code="auth.invalid_credentials")
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
