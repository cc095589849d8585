"""Impersonation: an admin gives a reason and gets a link, valid for ten minutes and once,
that opens a session as the user in another browser, capped at an hour.

Everything done in that session is attributed to both (the actor carries the admin as
impersonator); the link's making, its use and the end are audit events with the reason.
The session dies at once when the admin may no longer impersonate the user.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from userdesk.access import service as access
from userdesk.access.rules import Actor, Permission, takeover_problem
from userdesk.activity.models import ActivityEvent
from userdesk.audit import service as audit
from userdesk.auth import service as auth
from userdesk.auth.models import LoginSession
from userdesk.auth.secrets import hash_token, new_token
from userdesk.db.base import utcnow
from userdesk.db.session import best_effort
from userdesk.errors import InvalidInput, PermissionDenied
from userdesk.impersonation.models import Impersonation
from userdesk.mail import service as mail
from userdesk.mail.rules import EmailKind
from userdesk.organizations import service as organizations
from userdesk.organizations.models import Organization
from userdesk.users import service as users
from userdesk.users.models import User
from userdesk.users.rules import SIGN_IN_STATUSES

LINK_TTL = timedelta(minutes=10)
SESSION_TTL = timedelta(minutes=60)
REASON_MAX = 500


@dataclass(frozen=True)
class NewImpersonation:
    """The link is shown once, to the admin who asked for it."""

    impersonation: Impersonation
    url: str
    expires_at: datetime


@dataclass(frozen=True)
class Pending:
    """What the page behind a link shows before it is used."""

    impersonation: Impersonation
    admin: User
    user: User


def _problem(db: Session, admin: Actor, user: User) -> str | None:
    """Why ADMIN may not act as USER right now, or None."""
    if not admin.covers(Permission.USERS_IMPERSONATE, user.team_id):
        return f"You need the '{Permission.USERS_IMPERSONATE}' permission over {user.name}."
    organization = db.get_one(Organization, admin.organization_id)
    if not organizations.allows_impersonation(organization):
        return "Impersonation is turned off in this organization's settings."
    if user.id == admin.user_id:
        return "You cannot impersonate yourself."
    if user.status not in SIGN_IN_STATUSES:
        return f"{user.name} is {user.status}: only active users can be impersonated."
    theirs = access.actor_for_user(db, user).permissions
    return takeover_problem(user.name, theirs, admin.permissions, "be impersonated")


def start(
    db: Session, *, actor: Actor, user_id: int, reason: str, base_url: str
) -> NewImpersonation:
    """A single-use link for ACTOR to act as the user, for REASON.

    Raises:
        PermissionDenied: no users.impersonate over the user, an API key, from inside an
            impersonation, impersonation turned off, oneself, an inactive user, or a user
            whose permissions are not a strict subset of the actor's.
        NotFound: no such user within the actor's reach.
        InvalidInput: no reason, or one too long.
    """
    access.require(actor, Permission.USERS_IMPERSONATE)
    access.refuse_while_impersonating(actor, "start another impersonation")
    if actor.user_id is None:
        raise PermissionDenied(
            "Impersonation is for a signed-in person, not an API key.",
            code="impersonation.forbidden",
        )
    reason = reason.strip()
    if not reason:
        raise InvalidInput("Give a reason.", fields={"reason": "is required"})
    if len(reason) > REASON_MAX:
        raise InvalidInput(
            "The reason is too long.",
            fields={"reason": f"is longer than {REASON_MAX} characters"},
        )
    user = users.user_in_reach(db, actor=actor, user_id=user_id, permission=Permission.USERS_READ)
    if problem := _problem(db, actor, user):
        raise PermissionDenied(problem, code="impersonation.forbidden")
    token, now = new_token(), utcnow()
    impersonation = Impersonation(
        organization_id=actor.organization_id,
        admin_id=actor.user_id,
        user_id=user.id,
        reason=reason,
        token_hash=hash_token(token),
        link_expires_at=now + LINK_TTL,
    )
    db.add(impersonation)
    db.flush()
    audit.record(
        db,
        actor=actor,
        action="user.impersonation_started",
        target_type="user",
        target_id=user.id,
        reason=reason,
        changes={"impersonation": impersonation.id, "link_expires_at": str(now + LINK_TTL)},
    )
    return NewImpersonation(
        impersonation, f"{base_url}/impersonate/{token}", impersonation.link_expires_at
    )


def pending(db: Session, *, token: str) -> Pending:
    """The impersonation a link leads to, still unused and in time.

    Raises:
        LinkProblem: unknown, used or expired (the code says which).
    """
    found = db.scalar(select(Impersonation).where(Impersonation.token_hash == hash_token(token)))
    if found is None:
        raise auth.LinkProblem("This link is not valid.", code="link.invalid")
    if found.used_at is not None:
        raise auth.LinkProblem("This link was already used.", code="link.used")
    if found.link_expires_at <= utcnow():
        raise auth.LinkProblem("This link has expired.", code="link.expired")
    return Pending(found, db.get_one(User, found.admin_id), db.get_one(User, found.user_id))


def use(
    db: Session,
    *,
    token: str,
    base_url: str,
    ip: str | None = None,
    user_agent: str | None = None,
    replaces_token: str | None = None,
) -> str:
    """Open the session a link promises, as the user for at most SESSION_TTL; the token
    for its cookie.

    Raises:
        LinkProblem: the link is unknown, used or expired.
        PermissionDenied: the admin may no longer act as the user (checked again now).
    """
    found = pending(db, token=token)
    impersonation, user = found.impersonation, found.user
    admin = access.actor_for_user(db, found.admin, ip=ip, user_agent=user_agent)
    if found.admin.status not in SIGN_IN_STATUSES:
        raise PermissionDenied(
            f"{found.admin.name} may no longer impersonate.", code="impersonation.forbidden"
        )
    if problem := _problem(db, admin, user):
        raise PermissionDenied(problem, code="impersonation.forbidden")
    # The link dies now, even if two requests race for it: only one UPDATE matches.
    now = utcnow()
    taken = db.execute(
        update(Impersonation)
        .where(Impersonation.id == impersonation.id, Impersonation.used_at.is_(None))
        .values(used_at=now, session_ends_at=now + SESSION_TTL)
    )
    if taken.rowcount != 1:  # type: ignore[attr-defined]
        raise auth.LinkProblem("This link was already used.", code="link.used")
    db.refresh(impersonation)
    if replaces_token:
        auth.sign_out(db, token=replaces_token)
    _, session_token = auth.open_session(
        db,
        user=user,
        expires_at=now + SESSION_TTL,
        ip=ip,
        user_agent=user_agent,
        impersonation_id=impersonation.id,
    )
    as_user = as_impersonated(access.actor_for_user(db, user, ip=ip, user_agent=user_agent), admin)
    audit.record(
        db,
        actor=as_user,
        action="user.impersonation_url_used",
        target_type="user",
        target_id=user.id,
        reason=impersonation.reason,
        changes={"impersonation": impersonation.id, "ends_at": str(now + SESSION_TTL)},
    )
    organization = db.get_one(Organization, user.organization_id)
    if organizations.notifies_impersonation(organization):
        mail.enqueue(
            db,
            organization_id=organization.id,
            to=user.email,
            kind=EmailKind.IMPERSONATION_NOTICE,
            context=mail.email_context(
                organization,
                user,
                link=f"{base_url}/me",
                expires=now + SESSION_TTL,
                admin=admin.name,
                reason=impersonation.reason,
            ),
            user_id=user.id,
        )
    return session_token


def as_impersonated(user_actor: Actor, admin: Actor) -> Actor:
    """The user's actor, with the admin behind it named."""
    return dataclasses.replace(
        user_actor, impersonator_id=admin.user_id, impersonator_name=admin.name
    )


@dataclass(frozen=True)
class Live:
    """An impersonated session still allowed to go on."""

    impersonation: Impersonation
    admin: User
    admin_actor: Actor  # as the admin stands now


def live(db: Session, *, session: LoginSession, user: User) -> Live | str | None:
    """The impersonation behind SESSION if it may go on; else why it must be cut short
    (the admin was disabled or lost the permission, the user changed), to be recorded
    with cut_short; None when it had already ended."""
    impersonation = db.get_one(Impersonation, session.impersonation_id)
    if impersonation.ended_at is not None:
        return None
    admin = db.get_one(User, impersonation.admin_id)
    if admin.status not in SIGN_IN_STATUSES:
        return f"{admin.name} is {admin.status}"
    admin_actor = access.actor_for_user(db, admin)
    if problem := _problem(db, admin_actor, user):
        return problem
    return Live(impersonation, admin, admin_actor)


def cut_short(db: Session, *, session_id: int, why: str) -> None:
    """End the impersonated session SESSION_ID for WHY (in a transaction of its own: the
    request that found out fails, and must not take the record with it)."""
    session = db.get_one(LoginSession, session_id)
    end(db, session=session, user=db.get_one(User, session.user_id), why=why)


def end(db: Session, *, session: LoginSession, user: User, why: str = "ended") -> None:
    """Close an impersonated session (the admin ended it, or signed out)."""
    impersonation = db.get_one(Impersonation, session.impersonation_id)
    if impersonation.ended_at is None:
        _end(db, impersonation, session, db.get_one(User, impersonation.admin_id), user, why)


def _end(
    db: Session,
    impersonation: Impersonation,
    session: LoginSession,
    admin: User,
    user: User,
    why: str,
) -> None:
    now = utcnow()
    impersonation.ended_at, impersonation.end_reason = now, why
    db.execute(
        update(LoginSession)
        .where(LoginSession.id == session.id, LoginSession.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    as_user = as_impersonated(access.actor_for_user(db, user), access.actor_for_user(db, admin))
    audit.record(
        db,
        actor=as_user,
        action="user.impersonation_ended",
        target_type="user",
        target_id=user.id,
        reason=impersonation.reason,
        changes={"impersonation": impersonation.id, "ended": why},
    )


def note_request(
    db: Session, live: Live, user: User, *, method: str, path: str, ip: str | None
) -> None:
    """Put one request made as USER by the admin in the user's timeline."""
    event = ActivityEvent(
        organization_id=user.organization_id,
        user_id=user.id,
        type="impersonated.request",
        occurred_at=utcnow(),
        properties={
            "method": method,
            "path": path,
            "impersonated_by": live.admin.name,
            "impersonator_id": str(live.admin.id),
            "reason": live.impersonation.reason,
            **({"ip": ip} if ip else {}),
        },
    )
    with best_effort(db):
        db.add(event)
