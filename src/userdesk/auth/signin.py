"""Signing in with an email and a password."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from userdesk import security_log
from userdesk.activity.models import SIGN_IN_LOCKED, ActivityEvent
from userdesk.auth import device_cookies, imported_hashes, password_imports, rules, throttle
from userdesk.auth.imported_hashes import FirebaseParams
from userdesk.auth.secrets import verify_password
from userdesk.auth.service import SignedIn, start_session
from userdesk.config import Settings
from userdesk.db.base import utcnow
from userdesk.errors import NotAuthenticated
from userdesk.organizations import service as organizations
from userdesk.organizations.models import Organization
from userdesk.two_step import service as two_step
from userdesk.two_step.service import SecondStep
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
    keep_signed_in: bool = False,
    device_cookie: str | None = None,
) -> SignedIn | SecondStep:
    """Check EMAIL and PASSWORD and open a new session (the old one, if any, is revoked);
    KEEP_SIGNED_IN asks for a kept one (`auth.service.start_session` says when it is).

    With two-step verification on, the right password opens no session yet: the answer is
    the SecondStep that `two_step.service.complete_challenge` finishes with a code.

    Failed sign-ins are counted per account and client: the browser, when DEVICE_COOKIE
    holds a valid entry for the account (`device_cookies`), else the IP. After
    `rules.LOCK_AFTER` in a row that client is locked out of the account for a while (longer
    at each further failure); after `rules.UNTRUSTED_LOCK_AFTER` from clients without a
    device cookie, all of those are. While locked out, even the right password gets the
    answer a wrong one gets, after the same work. So a stranger failing someone's password
    locks out the stranger, and guessing from many addresses locks out new browsers, never
    the owner's own.

    Raises:
        RateLimited: too many attempts from IP, or for EMAIL from this client or from all
            clients without a device cookie (the same for unknown emails).
        NotAuthenticated: unknown email, wrong password, a locked account, or an account
            that may not sign in; the message is the same in the first three cases.
    """
    now = now or utcnow()
    candidates = db.scalars(
        select(User).where(User.email_normalized == normalize_email(email)).order_by(User.id)
    ).all()
    devices = {
        u.id: device_cookies.nonce_for(settings.secret_key, device_cookie, u.id, now=now)
        for u in candidates
    }
    device = next((nonce for nonce in devices.values() if nonce), None)
    throttle.sign_in(db, ip=ip, email=email, device=device, now=now)
    clients = {u.id: throttle.client_key(ip=ip, device=devices[u.id]) for u in candidates}
    locked = {u.id for u in candidates if _locked(db, u, clients[u.id], now)}
    user = next(
        (
            u
            for u in candidates
            if verify_password(u.password_hash, password, firebase=_firebase_for(db, settings, u))
        ),
        None,
    )
    if not candidates:
        verify_password(None, password)  # spend the same time as for a known email
    if user is not None and user.id in locked:
        user = None  # a locked account answers as if the password were wrong
    if user is None:
        for candidate in candidates:
            if candidate.id not in locked:
                _count_failure(db, candidate, clients[candidate.id], now=now, ip=ip)
        _log_failure("auth.invalid_credentials", email=email, ip=ip, locked=bool(locked))
        raise NotAuthenticated(INVALID_CREDENTIALS, code="auth.invalid_credentials")
    throttle.forget_failed_sign_ins(db, user_id=user.id, client=clients[user.id])
    throttle.signed_in(db, email=email, ip=ip, device=devices[user.id])
    try:
        _check_standing(db, user)
    except NotAuthenticated as exc:
        _log_failure(exc.code, email=email, ip=ip, user_id=user.id)
        raise
    password_imports.rehash_after_sign_in(db, user=user, password=password)
    if two_step.is_enabled(db, user):
        security_log.event("sign_in", outcome="second_step", user_id=user.id, ip=ip)
        return two_step.start_challenge(db, user=user)
    security_log.event("sign_in", outcome="success", user_id=user.id, ip=ip, factors="password")
    return start_session(
        db,
        settings=settings,
        user=user,
        ip=ip,
        user_agent=user_agent,
        replaces_token=replaces_token,
        keep_signed_in=keep_signed_in,
    )


def _firebase_for(db: Session, settings: Settings, user: User) -> FirebaseParams | None:
    """The Firebase parameters USER's hash needs: only for an imported Firebase one."""
    stored = user.password_hash
    if not stored or imported_hashes.format_of(stored) != imported_hashes.Format.FIREBASE_SCRYPT:
        return None
    organization = db.get_one(Organization, user.organization_id)
    return password_imports.firebase_params(settings, organization)


def _log_failure(reason: str, *, email: str, ip: str | None, **fields: object) -> None:
    security_log.event(
        "sign_in",
        outcome="failure",
        level=logging.WARNING,
        reason=reason,
        email_sha256=security_log.email_digest(email),
        ip=ip,
        **fields,
    )


def _account_key(user: User) -> str:
    return throttle.account_key(user.id)


def _untrusted(client: str) -> bool:
    return not client.startswith("device:")


def _locked(db: Session, user: User, client: str, now: datetime) -> bool:
    """Whether CLIENT is locked out of USER's account now: by its own failures, or, without
    a device cookie, by those of every such client."""
    counts = [(throttle.failed_from(client), rules.LOCK_AFTER)]
    if _untrusted(client):
        counts.append((FAILED_SIGN_IN, rules.UNTRUSTED_LOCK_AFTER))
    for action, after in counts:
        failures = throttle.recent_hits(
            db, action=action, key=_account_key(user), window=rules.FAILURES_KEPT, now=now
        )
        until = rules.locked_until(failures, after=after)
        if until is not None and until > now:
            return True
    return False


def _count_failure(db: Session, user: User, client: str, *, now: datetime, ip: str | None) -> None:
    """Count a failed sign-in of USER from CLIENT, for good (the request's transaction
    rolls back); one that locks a client out goes in the user's timeline."""
    counts = [(throttle.failed_from(client), rules.LOCK_AFTER, "this browser or address")]
    if _untrusted(client):
        counts.append((FAILED_SIGN_IN, rules.UNTRUSTED_LOCK_AFTER, "every new browser"))
    for action, after, who in counts:
        failures = 1 + len(
            throttle.recent_hits(
                db, action=action, key=_account_key(user), window=rules.FAILURES_KEPT, now=now
            )
        )
        lock = rules.lock_length(failures, after=after)
        also: throttle.Rows = []
        if lock:
            properties: dict[str, object] = {
                "failures": failures,
                "until": (now + lock).isoformat(),
                "minutes": int(lock.total_seconds() // 60),
                "locked_out": who,
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
            action=action,
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
