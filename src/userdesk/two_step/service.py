"""Two-step verification: enrolling an authenticator app, the sign-in's second step,
recovery codes, and an admin's reset.

The shared secret is kept encrypted (AES-GCM under a key derived from the secret key), a
code works once (the last accepted time step is kept), and wrong codes are counted per
account: after `FAILED_CODES.max_hits` within its window the second step is refused for
a while, whatever is typed. Recovery codes are kept as SHA-256 (120 random bits each).
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import segno
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from userdesk import sealing, security_log
from userdesk.access import service as access
from userdesk.access.rules import Actor, Permission
from userdesk.audit import service as audit
from userdesk.auth import throttle
from userdesk.auth.service import SignedIn, find_user_token, issue_user_token, start_session
from userdesk.config import Settings
from userdesk.db.base import utcnow
from userdesk.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from userdesk.organizations import service as organizations
from userdesk.organizations.models import Organization
from userdesk.two_step import rules
from userdesk.two_step.models import RecoveryCode, TwoStepFactor
from userdesk.users import account
from userdesk.users.models import User

CHALLENGE = "two_step"  # the purpose of the sign-in's pending second step (user_tokens)
CHALLENGE_TTL = timedelta(minutes=5)
FAILED_CODES = throttle.Policy("two_step.failed", 5, timedelta(minutes=15))
WRONG_CODE = "is not the code your authenticator app shows, nor an unused recovery code"
REQUIRED_CODE = "two_step.required"


# The key two-step seeds are sealed under (see userdesk.sealing), each bound to its user.
_PURPOSE = b"userdesk two-step secrets v1"


def _encrypt(settings: Settings, secret: str, user_id: int) -> str:
    return sealing.seal(settings, purpose=_PURPOSE, secret=secret, associated=str(user_id))


def _decrypt(settings: Settings, stored: str, user_id: int) -> str:
    return sealing.unseal(settings, purpose=_PURPOSE, stored=stored, associated=str(user_id))


def _factor(db: Session, user_id: int) -> TwoStepFactor | None:
    return db.scalar(select(TwoStepFactor).where(TwoStepFactor.user_id == user_id))


def is_enabled(db: Session, user: access.Person) -> bool:
    """Whether USER signs in with a second step."""
    factor = _factor(db, user.id)
    return factor is not None and factor.enabled_at is not None


def is_required(
    db: Session,
    user: access.Person,
    *,
    has_console_access: bool,
    organization: organizations.HasSettings | None = None,
) -> bool:
    """Whether USER's organization requires a second step of back-office users like them.

    ORGANIZATION: USER's, when the caller has it at hand (else it is read)."""
    if not has_console_access:
        return False
    if organization is None:
        organization = db.get_one(Organization, user.organization_id)
    return organizations.requires_two_step(organization)


def is_due(
    db: Session,
    user: access.Person,
    *,
    has_console_access: bool,
    organization: organizations.HasSettings | None = None,
) -> bool:
    """Whether USER must set up a second step before acting with their roles (ORGANIZATION:
    USER's, when the caller has it at hand)."""
    required = is_required(
        db, user, has_console_access=has_console_access, organization=organization
    )
    return required and not is_enabled(db, user)


def remaining_recovery_codes(db: Session, user: User) -> int:
    unused = select(func.count()).where(
        RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None)
    )
    return db.scalar(unused) or 0


@dataclass(frozen=True)
class Summary:
    """What /me says of a person's two-step verification."""

    enabled: bool
    recovery_codes_left: int
    required: bool


def summary(db: Session, *, user: User, has_console_access: bool) -> Summary:
    enabled = is_enabled(db, user)
    return Summary(
        enabled=enabled,
        recovery_codes_left=remaining_recovery_codes(db, user) if enabled else 0,
        required=is_required(db, user, has_console_access=has_console_access),
    )


@dataclass(frozen=True)
class Enrollment:
    """What the person copies into their authenticator app."""

    secret: str
    uri: str
    qr_svg: str


def begin(db: Session, *, actor: Actor, user: User, settings: Settings) -> Enrollment:
    """Start enrolling an authenticator app for USER (a new secret, not in force until
    confirmed with a code).

    Raises:
        PermissionDenied: ACTOR is not USER, or is an admin impersonating them.
        Conflict: two-step verification is already on.
    """
    _own(actor, user)
    factor = _factor(db, user.id)
    if factor is not None and factor.enabled_at is not None:
        raise Conflict("Two-step verification is already on.", code="two_step.enabled")
    secret = rules.new_secret()
    if factor is None:
        factor = TwoStepFactor(organization_id=user.organization_id, user_id=user.id)
        db.add(factor)
    factor.secret_encrypted = _encrypt(settings, secret, user.id)
    factor.last_step = None
    db.flush()
    return _enrollment(db, user, secret)


def pending_enrollment(db: Session, *, user: User, settings: Settings) -> Enrollment | None:
    """The enrollment USER started and has not confirmed yet, if any."""
    factor = _factor(db, user.id)
    if factor is None or factor.enabled_at is not None:
        return None
    return _enrollment(db, user, _decrypt(settings, factor.secret_encrypted, user.id))


def _enrollment(db: Session, user: User, secret: str) -> Enrollment:
    issuer = db.get_one(Organization, user.organization_id).name or "Userdesk"
    uri = rules.provisioning_uri(secret, account=user.email, issuer=issuer)
    out = io.BytesIO()
    segno.make(uri, error="m").save(out, kind="svg", scale=4, xmldecl=False, svgns=True)
    return Enrollment(secret=secret, uri=uri, qr_svg=out.getvalue().decode())


def confirm(
    db: Session,
    *,
    actor: Actor,
    user: User,
    settings: Settings,
    current_password: str,
    code: str,
    now: datetime | None = None,
) -> list[str]:
    """Turn two-step verification on once USER proves their password and a first code;
    returns the recovery codes, shown this once.

    Raises:
        PermissionDenied: ACTOR is not USER, or is impersonating them.
        NotFound: no enrollment was started.
        InvalidInput: the password or the code is wrong (the field named).
        RateLimited: too many wrong passwords or codes lately.
    """
    _own(actor, user)
    factor = _factor(db, user.id)
    if factor is None or factor.enabled_at is not None:
        raise NotFound("Start again: scan a new code first.", code="two_step.not_started")
    account.check_current_password(db, user, current_password)
    now = now or utcnow()
    step = _accepted_step(db, settings, factor, user, code, now)
    if step is None:
        raise InvalidInput("That code is not right.", fields={"code": WRONG_CODE})
    factor.enabled_at = now
    factor.last_step = step
    codes = _new_recovery_codes(db, user)
    audit.record(
        db,
        actor=actor,
        action="user.two_step_enabled",
        target_type="user",
        target_id=user.id,
    )
    return codes


def disable(
    db: Session, *, actor: Actor, user: User, settings: Settings, current_password: str
) -> None:
    """USER turns two-step verification off, proving their password.

    Raises:
        PermissionDenied: ACTOR is not USER, is impersonating them, or the organization
            requires it of them.
        InvalidInput: the password is wrong.
    """
    _own(actor, user)
    account.check_current_password(db, user, current_password)
    if is_required(db, user, has_console_access=actor.has_console_access):
        raise PermissionDenied(
            "Your organization requires two-step verification of back-office users.",
            code=REQUIRED_CODE,
        )
    _forget(db, user)
    audit.record(
        db, actor=actor, action="user.two_step_disabled", target_type="user", target_id=user.id
    )


def regenerate_recovery_codes(
    db: Session, *, actor: Actor, user: User, current_password: str
) -> list[str]:
    """New recovery codes for USER (the old ones die), shown this once.

    Raises:
        PermissionDenied, InvalidInput: as `disable`; Conflict when two-step is off.
    """
    _own(actor, user)
    account.check_current_password(db, user, current_password)
    if not is_enabled(db, user):
        raise Conflict("Two-step verification is off.", code="two_step.disabled")
    codes = _new_recovery_codes(db, user)
    audit.record(
        db,
        actor=actor,
        action="user.recovery_codes_renewed",
        target_type="user",
        target_id=user.id,
    )
    return codes


def reset(db: Session, *, actor: Actor, user_id: int) -> None:
    """An admin turns a user's two-step verification off (a lost phone): the user signs
    in with the password alone, then enrolls again.

    Raises:
        PermissionDenied: the actor lacks users.update over the user, is the user, or the
            user holds as much as the actor (so no Administrator resets another's).
        NotFound: no such user within reach.
        Conflict: the user has no two-step verification.
    """
    access.require(actor, Permission.USERS_UPDATE)
    user = db.scalar(
        select(User).where(
            User.id == user_id, access.users_in_scope(actor, Permission.USERS_UPDATE)
        )
    )
    if user is None:
        raise NotFound("No such user.", code="user.not_found")
    if actor.user_id == user.id:
        raise PermissionDenied(
            "Turn your own two-step verification off from your account page.",
            code="two_step.own",
        )
    access.require_stronger(db, actor, user, what="have their two-step verification reset")
    if not is_enabled(db, user):
        raise Conflict(f"{user.name} has no two-step verification.", code="two_step.disabled")
    _forget(db, user)
    audit.record(
        db, actor=actor, action="user.two_step_reset", target_type="user", target_id=user.id
    )


@dataclass(frozen=True)
class SecondStep:
    """A sign-in whose password was right and that now waits for a code: TOKEN names it."""

    token: str


def start_challenge(db: Session, *, user: User) -> SecondStep:
    """The sign-in's second step for USER, who proved their password."""
    token, _ = issue_user_token(db, user=user, purpose=CHALLENGE, ttl=CHALLENGE_TTL)
    return SecondStep(token)


def complete_challenge(
    db: Session,
    *,
    settings: Settings,
    token: str,
    code: str,
    ip: str | None = None,
    user_agent: str | None = None,
    replaces_token: str | None = None,
    keep_signed_in: bool = False,
    now: datetime | None = None,
) -> SignedIn:
    """The second step: a code from the authenticator app (or a recovery code) opens the
    session that the password alone did not.

    Raises:
        LinkProblem: the pending step is unknown, used or expired (sign in again).
        InvalidInput: the code is wrong (counted).
        RateLimited: too many wrong codes for this account lately.
    """
    now = now or utcnow()
    found, user = find_user_token(db, token=token, purpose=CHALLENGE)
    throttle.refuse_while_limited(db, FAILED_CODES, throttle.account_key(user.id), now=now)
    factor = _factor(db, user.id)
    accepted = factor is not None and factor.enabled_at is not None
    if accepted and factor is not None:
        step = _accepted_step(db, settings, factor, user, code, now)
        if step is not None:
            factor.last_step = step
        else:
            accepted = _use_recovery_code(db, user, code, now)
    if not accepted:
        security_log.event(
            "second_step", outcome="failure", level=logging.WARNING, user_id=user.id, ip=ip
        )
        throttle.record(
            db,
            action=FAILED_CODES.action,
            key=throttle.account_key(user.id),
            window=FAILED_CODES.window,
            now=now,
            organization_id=user.organization_id,
        )
        raise InvalidInput("That code is not right.", fields={"code": WRONG_CODE})
    found.used_at = now
    throttle.forget(db, action=FAILED_CODES.action, key=throttle.account_key(user.id))
    security_log.event(
        "sign_in", outcome="success", user_id=user.id, ip=ip, factors="password+totp"
    )
    return start_session(
        db,
        settings=settings,
        user=user,
        ip=ip,
        user_agent=user_agent,
        replaces_token=replaces_token,
        keep_signed_in=keep_signed_in,
    )


def _accepted_step(
    db: Session,
    settings: Settings,
    factor: TwoStepFactor,
    user: User,
    code: str,
    now: datetime,
) -> int | None:
    secret = _decrypt(settings, factor.secret_encrypted, user.id)
    return rules.matching_step(
        secret, code, now_step=rules.step_of(now.timestamp()), after_step=factor.last_step
    )


def _use_recovery_code(db: Session, user: User, code: str, now: datetime) -> bool:
    if not rules.looks_like_recovery_code(code):
        return False
    used = db.execute(
        update(RecoveryCode)
        .where(
            RecoveryCode.user_id == user.id,
            RecoveryCode.code_hash == rules.recovery_code_hash(code),
            RecoveryCode.used_at.is_(None),
        )
        .values(used_at=now)
    )
    return bool(used.rowcount)  # type: ignore[attr-defined]


def _new_recovery_codes(db: Session, user: User) -> list[str]:
    db.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    codes = rules.new_recovery_codes()
    db.add_all(
        RecoveryCode(
            organization_id=user.organization_id,
            user_id=user.id,
            code_hash=rules.recovery_code_hash(code),
        )
        for code in codes
    )
    db.flush()
    return codes


def _forget(db: Session, user: User) -> None:
    db.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    db.execute(delete(TwoStepFactor).where(TwoStepFactor.user_id == user.id))


def _own(actor: Actor, user: User) -> None:
    account.require_own(actor, user)
    access.refuse_while_impersonating(actor, "change two-step verification")
