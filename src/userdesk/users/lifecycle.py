"""Changing a user's standing: validate, disable, ban, trash, delete and bring back.

One function applies every action: it checks the permission and the target, moves the
status through the machine of users.rules, records who, when and why, writes the audit
event (which writes the webhook messages for the host product, see webhooks.events),
cuts the user's sessions when access is lost, and queues the email the move calls for.
It all happens in the caller's transaction, so a refused action changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from userdesk.access import service as access
from userdesk.access.rules import ADMINISTRATOR, TEAM_ADMINISTRATOR, Actor, Permission
from userdesk.audit import service as audit
from userdesk.auth import service as auth
from userdesk.auth.models import ApiKey
from userdesk.db.base import utcnow
from userdesk.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from userdesk.invitations import service as invitations
from userdesk.invitations.models import Invitation
from userdesk.mail.rules import EmailKind
from userdesk.users import service as users
from userdesk.users.models import User
from userdesk.users.rules import (
    CUTS_ACCESS,
    MOVES,
    Action,
    IllegalMove,
    UserStatus,
    next_status,
    normalize_email,
)

PERMISSION = {
    Action.VALIDATE: Permission.USERS_MODERATE,
    Action.INVALIDATE: Permission.USERS_MODERATE,
    Action.DISABLE: Permission.USERS_MODERATE,
    Action.ENABLE: Permission.USERS_MODERATE,
    Action.BAN: Permission.USERS_MODERATE,
    Action.UNBAN: Permission.USERS_MODERATE,
    Action.REVOKE_SESSIONS: Permission.USERS_MODERATE,
    Action.TRASH: Permission.USERS_DELETE,
    Action.RESTORE: Permission.USERS_DELETE,
    Action.DELETE: Permission.USERS_DELETE,
    Action.REACTIVATE: Permission.USERS_CREATE,
    Action.ACTIVATE: Permission.USERS_ACTIVATE,
}
# Actions one may not take against oneself.
NOT_ON_ONESELF = frozenset({*CUTS_ACCESS, Action.INVALIDATE})
# Actions that email the user a link to choose a password: only for someone who holds less.
SENDS_ACCOUNT_LINK = frozenset({Action.ACTIVATE, Action.REACTIVATE})
REASON_MAX = 500
BAN_DAYS_MAX = 3650
DISABLE_REASONS = (
    "Left the organization",
    "Contract ended",
    "Security concern",
    "Requested by the user",
    "Inactive for a long time",
)


@dataclass(frozen=True)
class ActionInput:
    reason: str | None = None
    days: int | None = None  # for a ban: how long
    permanent: bool = False  # for a ban: for good (instead of days)
    confirm_email: str | None = None  # for delete: must be the user's email


def apply(
    db: Session,
    *,
    actor: Actor,
    user_id: int,
    action: Action,
    given: ActionInput = ActionInput(),
    base_url: str,
) -> User:
    """Apply ACTION to the user.

    Raises:
        PermissionDenied: the actor lacks the action's permission, or the user holds
            permissions the actor lacks (for activate and reactivate, which email a link
            to choose a password: holds as much as the actor).
        NotFound: no such user within the actor's reach.
        InvalidInput: a missing reason, a bad number of days, a confirmation that is not
            the user's email.
        Conflict: the move does not apply to the user's status (the message names it),
            the actor acts on themselves, or the last Administrator would lose access.
    """
    permission = PERMISSION[action]
    access.require(actor, permission)
    user = db.scalar(
        select(User).where(User.id == user_id, access.users_in_scope(actor, permission))
    )
    if user is None:
        raise NotFound(f"No user {user_id}.", code="user.not_found")
    check_input(action, given, user)
    _check_target(db, actor, user, action)
    current = UserStatus(user.status)
    previous = UserStatus(user.previous_status) if user.previous_status else None
    try:
        target = next_status(current, action, previous)
    except IllegalMove as move:
        raise Conflict(str(move), code="user.illegal_move") from None
    before = {"status": current.value, "validated": user.validated_at is not None}
    now = utcnow()
    _flags(user, action, now)
    if target is not current:
        user.previous_status = current.value if action in CUTS_ACCESS else None
        user.status = target.value
        user.status_changed_at = now
        user.status_changed_by_id = actor.user_id
        user.status_reason = given.reason.strip() if given.reason else None
        user.status_until = now + timedelta(days=given.days) if given.days else None
        if target is UserStatus.PENDING and action is Action.REACTIVATE:
            user.previous_status = None
    user.version += 1
    db.flush()
    _side_effects(db, actor, user, action, base_url)
    after = {"status": user.status, "validated": user.validated_at is not None}
    audit.record(
        db,
        actor=actor,
        action=f"user.{_past(action)}",
        target_type="user",
        target_id=user.id,
        reason=user.status_reason if action in (Action.DISABLE, Action.BAN) else given.reason,
        changes={
            key: {"from": before[key], "to": after[key]}
            for key in before
            if before[key] != after[key]
        }
        | ({"until": user.status_until.isoformat()} if user.status_until else {}),
    )
    return user


def _past(action: Action) -> str:
    return {
        Action.REVOKE_SESSIONS: "sessions_revoked",
        Action.BAN: "banned",
        Action.UNBAN: "unbanned",
        Action.REACTIVATE: "reactivated",
        Action.ACTIVATE: "activated",
    }.get(action, action.value.rstrip("e") + "ed")


def check_input(action: Action, given: ActionInput, user: User | None = None) -> None:
    """Raises InvalidInput naming what ACTION lacks in GIVEN (USER: for delete's email)."""
    problems = {}
    if action in (Action.DISABLE, Action.BAN):
        reason = (given.reason or "").strip()
        if not reason:
            problems["reason"] = "is required"
        elif len(reason) > REASON_MAX:
            problems["reason"] = f"is longer than {REASON_MAX} characters"
    if action is Action.BAN:
        if given.permanent and given.days is not None:
            problems["days"] = "goes with a ban for some days, not a permanent one"
        elif not given.permanent and given.days is None:
            problems["days"] = "is required, unless the ban is permanent"
        elif given.days is not None and not 1 <= given.days <= BAN_DAYS_MAX:
            problems["days"] = f"{given.days} is not between 1 and {BAN_DAYS_MAX}"
    typed = normalize_email(given.confirm_email or "")
    if action is Action.DELETE and (user is None or typed != user.email_normalized):
        email = user.email if user else "the email"
        problems["confirm_email"] = (
            f"'{given.confirm_email or ''}' is not {email}: type the user's email to confirm"
        )
    if problems:
        raise InvalidInput(f"'{action.value}' needs more from you.", fields=problems)


def _check_target(db: Session, actor: Actor, user: User, action: Action) -> None:
    if user.id == actor.user_id and action in NOT_ON_ONESELF:
        raise Conflict(f"You cannot {action.value} yourself.", code="user.self")
    access.require_not_weaker(db, actor, user)
    if action in SENDS_ACCOUNT_LINK:
        access.require_stronger(db, actor, user, what=f"be given '{action.value}'")
    if (
        action is Action.DELETE
        and access.user_holds_builtin(db, user, TEAM_ADMINISTRATOR.name)
        and not access.builtin_roles_of(db, actor) & {ADMINISTRATOR.name, TEAM_ADMINISTRATOR.name}
    ):
        raise PermissionDenied(
            "Only an Administrator or a Team Administrator deletes a Team Administrator.",
            code="permission_denied",
        )
    if action in CUTS_ACCESS and users.is_last_administrator(db, user):
        raise Conflict(
            "This is the organization's last active Administrator.", code="user.last_administrator"
        )


def _flags(user: User, action: Action, now: datetime) -> None:
    if action is Action.VALIDATE:
        if user.validated_at is not None:
            raise Conflict(f"{user.email} is validated already.", code="user.illegal_move")
        user.validated_at = now
    elif action is Action.INVALIDATE:
        if user.validated_at is None:
            raise Conflict(f"{user.email} is not validated.", code="user.illegal_move")
        user.validated_at = None


def _side_effects(db: Session, actor: Actor, user: User, action: Action, base_url: str) -> None:
    if action in CUTS_ACCESS or action is Action.REVOKE_SESSIONS:
        auth.revoke_user_sessions(db, user_id=user.id)
    if action in (Action.TRASH, Action.DELETE):
        _cancel_invitations(db, user)
    if action is Action.TRASH:
        db.execute(
            update(ApiKey)
            .where(ApiKey.created_by_id == user.id, ApiKey.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )
    if action is Action.REACTIVATE:
        invitations.reinvite(db, actor=actor, user=user, base_url=base_url)
    if action is Action.ACTIVATE:
        users.send_set_password_email(
            db, user=user, kind=_activation_email(db, user), base_url=base_url
        )


def _activation_email(db: Session, user: User) -> EmailKind:
    """REGISTRATION for someone known by email alone (no password, never invited), else
    the WELCOME invited people and others get."""
    invited = db.scalar(select(Invitation.id).where(Invitation.user_id == user.id).limit(1))
    if user.password_hash is None and invited is None:
        return EmailKind.REGISTRATION
    return EmailKind.WELCOME


def _cancel_invitations(db: Session, user: User) -> None:
    db.execute(
        update(Invitation)
        .where(Invitation.user_id == user.id, Invitation.status == "pending")
        .values(status="revoked", revoked_at=utcnow())
    )


def lift_expired_bans(db: Session, *, now: datetime | None = None) -> int:
    """End the bans whose time is up (the worker runs this); how many were lifted."""
    now = now or utcnow()
    expired = db.scalars(
        select(User).where(User.status == UserStatus.BANNED.value, User.status_until <= now)
    ).all()
    for user in expired:
        lift_ban(db, user=user, now=now)
    return len(expired)


def lift_ban(db: Session, *, user: User, now: datetime) -> None:
    """End USER's ban, which has run out, as the system."""
    previous = UserStatus(user.previous_status) if user.previous_status else None
    user.status = next_status(UserStatus.BANNED, Action.UNBAN, previous).value
    user.status_reason = None
    user.status_until = None
    user.status_changed_at = now
    user.status_changed_by_id = None
    user.version += 1
    db.flush()
    audit.record(
        db,
        actor=Actor(user.organization_id, None, None, "system"),
        action="user.unbanned",
        target_type="user",
        target_id=user.id,
        reason="The ban ran out.",
        changes={"status": {"from": UserStatus.BANNED.value, "to": user.status}},
    )


def available(
    actor: Actor, *, user_id: int, status: str, validated: bool, team_id: int | None
) -> list[Action]:
    """The actions that apply to a user now and that ACTOR holds the permission for.

    What to offer in a menu; apply() checks everything again.
    """
    current = UserStatus(status)
    offered = []
    for action in Action:
        starts, _ = MOVES[action]
        if current not in starts or not actor.covers(PERMISSION[action], team_id):
            continue
        if (action is Action.VALIDATE and validated) or (
            action is Action.INVALIDATE and not validated
        ):
            continue
        if user_id == actor.user_id and action in NOT_ON_ONESELF:
            continue
        offered.append(action)
    return offered
