"""A signed-in person's own account (/me): name, password, email, and their sessions.

The actor is the person themself (an Actor built for their browser session). While an
admin impersonates them, the name may change (it is on the record under both names, as
an admin edit would be), but nothing that proves who the person is: neither the
password, nor the email, nor the person's other sessions, which an admin ends with the
users.moderate action "revoke sessions" under their own name instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from userdesk.access import service as access
from userdesk.access.rules import Actor
from userdesk.audit import service as audit
from userdesk.auth import throttle
from userdesk.auth.devices import describe_device
from userdesk.auth.models import LoginSession
from userdesk.auth.secrets import hash_password, verify_password
from userdesk.auth.service import password_words
from userdesk.auth.session_rules import ends_at
from userdesk.db.base import utcnow
from userdesk.errors import InvalidInput, NotFound, PermissionDenied
from userdesk.impersonation.models import Impersonation
from userdesk.mail import service as mail
from userdesk.mail.rules import EmailKind
from userdesk.organizations import service as organizations
from userdesk.organizations.models import Organization
from userdesk.users import attributes
from userdesk.users.models import COLOR_SCHEMES, User
from userdesk.users.rules import email_problem, name_problem, normalize_email, password_problem
from userdesk.users.service import _request_email_change

WRONG_PASSWORD = "is not your current password"  # noqa: S105 - a message, not a password


def require_own(actor: Actor, user: User) -> None:
    """Raises PermissionDenied unless ACTOR is USER (API keys have no account of their own)."""
    if actor.user_id is None or actor.user_id != user.id:
        raise PermissionDenied(
            "Only the person signed in can change their own account.", code="account.not_own"
        )


# Wrong current passwords typed on /me, per account: a stolen session must not become a
# way to guess the password (the sign-in form has its own, stricter, lock).
WRONG_PASSWORD_LIMIT = throttle.Policy("account.wrong_password", 10, timedelta(minutes=15))


def check_current_password(db: Session, user: User, current_password: str) -> None:
    """Raises InvalidInput unless CURRENT_PASSWORD is USER's (RateLimited after too many
    wrong ones lately, whatever is typed)."""
    if not current_password:
        raise InvalidInput(
            "Type your current password.", fields={"current_password": "is required"}
        )
    key = throttle.account_key(user.id)
    throttle.refuse_while_limited(db, WRONG_PASSWORD_LIMIT, key)
    if not verify_password(user.password_hash, current_password):
        throttle.apply(db, WRONG_PASSWORD_LIMIT, key)
        raise InvalidInput(
            f"The current password {WRONG_PASSWORD}.",
            code="account.wrong_password",
            fields={"current_password": WRONG_PASSWORD},
        )


def change_own_name(
    db: Session, *, actor: Actor, user: User, first_name: str, last_name: str
) -> User:
    """USER changes their first and last name.

    Raises:
        PermissionDenied: ACTOR is not USER.
        InvalidInput: a name is too long (each field named).
    """
    require_own(actor, user)
    first, last = first_name.strip(), last_name.strip()
    problems = {
        field: problem
        for field, value in (("first_name", first), ("last_name", last))
        if (problem := name_problem(value))
    }
    if problems:
        raise InvalidInput("Your name is not valid.", fields=problems)
    changes = {
        field: {"from": getattr(user, field), "to": value}
        for field, value in (("first_name", first), ("last_name", last))
        if getattr(user, field) != value
    }
    if not changes:
        return user
    user.first_name, user.last_name = first, last
    user.version += 1
    db.flush()
    audit.record(
        db,
        actor=actor,
        action="user.updated",
        target_type="user",
        target_id=user.id,
        changes=changes,
    )
    return user


def change_own_attributes(db: Session, *, actor: Actor, user: User, values: dict[str, Any]) -> User:
    """USER sets their values of the organization's fields that users may edit
    (editable_by "self"); a field required on the user's own page may not be left empty.

    Raises:
        PermissionDenied: ACTOR is not USER.
        InvalidInput: a field USER may not edit, an unknown or archived one, a value the
            field does not take, or a required one left empty (each named
            `attributes.<key>` with the value).
    """
    require_own(actor, user)
    party = attributes.Party.SELF
    clean = attributes.checked(db, organization_id=user.organization_id, values=values, party=party)
    after = {k: v for k, v in ({**(user.attributes or {}), **clean}).items() if v is not None}
    if missing := attributes.missing_required(
        db, organization_id=user.organization_id, values=after, occasion="self", party=party
    ):
        first = next(iter(missing.items()))
        raise InvalidInput(f"{first[0]}: {first[1]}.", code="invalid_attributes", fields=missing)
    moved = attributes.write(db, user, clean)
    if not moved:
        return user
    user.version += 1
    db.flush()
    audit.record(
        db,
        actor=actor,
        action="user.updated",
        target_type="user",
        target_id=user.id,
        changes={
            "attributes": {
                "from": {key: change["from"] for key, change in moved.items()},
                "to": {key: change["to"] for key, change in moved.items()},
            }
        },
    )
    return user


def choose_own_color_scheme(db: Session, *, actor: Actor, user: User, color_scheme: str) -> User:
    """USER chooses how their pages are colored: light, dark, or as their system says.

    A display preference of the person's own, like a browser setting: it changes nothing
    anyone else sees, so it is not audited and does not bump the user's version (the
    ETag of their record, which does not hold it). An administrator signed in as them
    may set it (it is in the impersonation's record of requests, as every request is).

    Raises:
        PermissionDenied: ACTOR is not USER.
        InvalidInput: COLOR_SCHEME is not one of COLOR_SCHEMES (the field named).
    """
    require_own(actor, user)
    if color_scheme not in COLOR_SCHEMES:
        raise InvalidInput(
            f"{color_scheme!r} is not a color scheme: choose {', '.join(COLOR_SCHEMES)}.",
            code="account.invalid_color_scheme",
            fields={"color_scheme": f"must be one of {', '.join(COLOR_SCHEMES)}"},
        )
    if user.color_scheme != color_scheme:
        user.color_scheme = color_scheme
        db.flush()
    return user


def change_own_password(
    db: Session,
    *,
    actor: Actor,
    user: User,
    current_password: str,
    new_password: str,
    sign_out_others: bool,
    current_session_id: int | None,
    base_url: str,
) -> int:
    """USER changes their password, proving the current one; returns how many other
    sessions were signed out (the current one is kept). A notice goes to their address.

    Raises:
        PermissionDenied: ACTOR is not USER, or is an admin impersonating them.
        InvalidInput: the current password is wrong, or the new one too short, too long,
            too common, or the same as the current one (the field named).
    """
    require_own(actor, user)
    access.refuse_while_impersonating(actor, "change the password")
    check_current_password(db, user, current_password)
    if problem := password_problem(new_password, password_words(db, user)):
        raise InvalidInput(f"The new password {problem}.", fields={"new_password": problem})
    if new_password == current_password:
        raise InvalidInput(
            "The new password is the current one: choose another.",
            fields={"new_password": "is the same as the current password"},
        )
    user.password_hash = hash_password(new_password)
    ended = _end_sessions(db, user, keep=current_session_id) if sign_out_others else []
    db.flush()
    organization = db.get_one(Organization, user.organization_id)
    mail.enqueue(
        db,
        organization_id=user.organization_id,
        to=user.email,
        kind=EmailKind.PASSWORD_CHANGED,
        context=mail.email_context(
            organization, user, link=f"{base_url}/password/forgot", expires=utcnow()
        ),
        user_id=user.id,
    )
    audit.record(
        db,
        actor=actor,
        action="user.password_changed",
        target_type="user",
        target_id=user.id,
        changes={"other_sessions_signed_out": len(ended)} | _impersonations(ended),
    )
    return len(ended)


def request_own_email_change(
    db: Session,
    *,
    actor: Actor,
    user: User,
    current_password: str,
    new_email: str,
    base_url: str,
) -> None:
    """USER asks to move to NEW_EMAIL: a link goes to it, a notice to the current address;
    the email changes only when the link is followed.

    Raises:
        PermissionDenied: ACTOR is not USER, or is an admin impersonating them.
        InvalidInput: the current password is wrong, or NEW_EMAIL is not an address or is
            the current one.
        Conflict: NEW_EMAIL belongs to someone else in the organization.
    """
    require_own(actor, user)
    access.refuse_while_impersonating(actor, "change the email")
    new_email = new_email.strip()
    if problem := email_problem(new_email):
        raise InvalidInput(f"The new email {problem}.", fields={"email": problem})
    if normalize_email(new_email) == user.email_normalized:
        raise InvalidInput(
            f"{new_email} is your address already.",
            fields={"email": f"'{new_email}' is your current address"},
        )
    check_current_password(db, user, current_password)
    _request_email_change(db, user, new_email, base_url)
    user.version += 1
    db.flush()
    audit.record(
        db,
        actor=actor,
        action="user.email_change_requested",
        target_type="user",
        target_id=user.id,
        changes={"pending_email": {"from": None, "to": new_email}},
    )


@dataclass(frozen=True)
class SessionView:
    """One of a person's live sessions, as their own page lists it."""

    id: int
    device: str
    ip: str | None
    signed_in_at: datetime
    last_seen_at: datetime
    current: bool
    impersonation: bool


def list_own_sessions(
    db: Session, *, actor: Actor, user: User, current_session_id: int | None
) -> list[SessionView]:
    """USER's sessions that are neither revoked nor expired, most recently used first.

    Expired as the organization's limits say; a row does not say whether its session is a
    kept one, so where the organization allows those, the longer limits are assumed.

    Raises:
        PermissionDenied: ACTOR is not USER.
    """
    require_own(actor, user)
    organization = db.get_one(Organization, user.organization_id)
    limits = organizations.session_limits(organization, kept=True)
    now = utcnow()
    rows = db.scalars(
        select(LoginSession)
        .where(
            LoginSession.user_id == user.id,
            LoginSession.revoked_at.is_(None),
            LoginSession.expires_at > now,
        )
        .order_by(LoginSession.last_seen_at.desc(), LoginSession.id.desc())
    )
    live = (
        row
        for row in rows
        if row.id == current_session_id
        or ends_at(
            created_at=row.created_at,
            last_seen_at=row.last_seen_at,
            expires_at=row.expires_at,
            limits=limits,
        )
        > now
    )
    return [
        SessionView(
            id=row.id,
            device=describe_device(row.user_agent),
            ip=row.ip,
            signed_in_at=row.created_at,
            last_seen_at=row.last_seen_at,
            current=row.id == current_session_id,
            impersonation=row.impersonation_id is not None,
        )
        for row in live
    ]


def end_own_session(
    db: Session,
    *,
    actor: Actor,
    user: User,
    session_id: int,
    current_session_id: int | None,
    current_password: str,
) -> None:
    """USER, proving their password again, signs out one of their other sessions (an
    admin's impersonation included).

    Raises:
        PermissionDenied: ACTOR is not USER, or is an admin impersonating them.
        InvalidInput: the current password is wrong; or it is the session in use (sign
            out instead).
        RateLimited: too many wrong passwords lately.
        NotFound: USER has no such live session.
    """
    require_own(actor, user)
    access.refuse_while_impersonating(actor, "sign the user out of their sessions")
    check_current_password(db, user, current_password)
    session = db.scalar(
        select(LoginSession).where(
            LoginSession.id == session_id,
            LoginSession.user_id == user.id,
            LoginSession.revoked_at.is_(None),
        )
    )
    if session is None:
        raise NotFound(f"You have no session {session_id}.", code="session.not_found")
    if session.id == current_session_id:
        raise InvalidInput(
            "This is the session you are using: sign out instead.",
            fields={"session_id": f"{session_id} is the current session"},
        )
    _end(db, session, user)
    db.flush()
    audit.record(
        db,
        actor=actor,
        action="user.session_ended",
        target_type="user",
        target_id=user.id,
        changes={"session": session.id, "device": describe_device(session.user_agent)}
        | ({"impersonation": session.impersonation_id} if session.impersonation_id else {}),
    )


def end_other_sessions(
    db: Session,
    *,
    actor: Actor,
    user: User,
    current_session_id: int | None,
    current_password: str,
) -> int:
    """USER, proving their password again, signs out everywhere but here; returns how many
    sessions ended.

    Raises:
        PermissionDenied: ACTOR is not USER, or is an admin impersonating them.
        InvalidInput: the current password is wrong.
        RateLimited: too many wrong passwords lately.
    """
    require_own(actor, user)
    access.refuse_while_impersonating(actor, "sign the user out of their sessions")
    check_current_password(db, user, current_password)
    ended = _end_sessions(db, user, keep=current_session_id)
    db.flush()
    audit.record(
        db,
        actor=actor,
        action="user.sessions_ended",
        target_type="user",
        target_id=user.id,
        changes={"sessions": len(ended), "kept_current": current_session_id is not None}
        | _impersonations(ended),
    )
    return len(ended)


def _impersonations(sessions: list[LoginSession]) -> dict[str, list[int]]:
    """For an audit row: the admins' impersonations among SESSIONS, which ended with them."""
    ids = [s.impersonation_id for s in sessions if s.impersonation_id is not None]
    return {"impersonations_ended": ids} if ids else {}


def _end_sessions(db: Session, user: User, *, keep: int | None) -> list[LoginSession]:
    """Revoke USER's live sessions but KEEP; returns them."""
    query = select(LoginSession).where(
        LoginSession.user_id == user.id, LoginSession.revoked_at.is_(None)
    )
    if keep is not None:
        query = query.where(LoginSession.id != keep)
    sessions = list(db.scalars(query))
    for session in sessions:
        _end(db, session, user)
    return sessions


def _end(db: Session, session: LoginSession, user: User) -> None:
    """Revoke SESSION; an admin's impersonation behind it ends too (the caller's audit row
    names it, with the person as the actor)."""
    now = utcnow()
    if session.impersonation_id is not None:
        found = db.get_one(Impersonation, session.impersonation_id)
        if found.ended_at is None:
            found.ended_at, found.end_reason = now, f"signed out by {user.name}"
    db.execute(
        update(LoginSession)
        .where(LoginSession.id == session.id, LoginSession.revoked_at.is_(None))
        .values(revoked_at=now)
    )
