"""Reading a user's churn risk, and the retention actions it suggests."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from userdesk.access.rules import Actor, Permission
from userdesk.audit import service as audit
from userdesk.churn.models import ChurnRun, ChurnScore
from userdesk.db.base import utcnow
from userdesk.errors import Conflict
from userdesk.mail import service as mail
from userdesk.mail.rules import EmailKind
from userdesk.organizations.models import Organization
from userdesk.users import service as users
from userdesk.users.models import User

HISTORY = 12  # runs shown in the score's trend

# reason (its first words) -> the retention action it suggests
ACTIONS = {
    "Never accepted the invitation": "resend_invitation",
    "Email address not confirmed": "resend_verification",
}
RE_ENGAGE = "send_re_engagement"


class ScorePoint(BaseModel):
    as_of: datetime
    probability: float
    level: str


class ChurnRead(BaseModel):
    user_id: str
    level: str | None  # None: not scored yet
    probability: float | None
    reasons: list[str]
    as_of: datetime | None
    model: str | None
    history: list[ScorePoint]  # oldest first
    actions: list[str]  # suggested retention actions, most fitting first


def user_churn(db: Session, *, actor: Actor, user_id: int) -> ChurnRead:
    """The user's latest score, its reasons, its trend and the actions it suggests.

    Raises:
        PermissionDenied: the actor may not see users' activity.
        NotFound: no such user within the actor's reach.
    """
    user = users.user_in_reach(
        db, actor=actor, user_id=user_id, permission=Permission.USERS_ACTIVITY
    )
    rows = db.execute(
        select(ChurnScore, ChurnRun.as_of, ChurnRun.model)
        .join(ChurnRun, ChurnRun.id == ChurnScore.run_id)
        .where(ChurnScore.user_id == user.id)
        .order_by(ChurnScore.run_id.desc())
        .limit(HISTORY)
    ).all()
    if not rows:
        return ChurnRead(
            user_id=str(user.id),
            level=None,
            probability=None,
            reasons=[],
            as_of=None,
            model=None,
            history=[],
            actions=[],
        )
    latest, as_of, model_name = rows[0]
    return ChurnRead(
        user_id=str(user.id),
        level=latest.level,
        probability=latest.probability,
        reasons=latest.reasons,
        as_of=as_of,
        model=model_name,
        history=[
            ScorePoint(as_of=when, probability=score.probability, level=score.level)
            for score, when, _ in reversed(rows)
        ],
        actions=suggested(latest.reasons, latest.level),
    )


def suggested(reasons: list[str], level: str) -> list[str]:
    """The retention actions that answer REASONS (a re-engagement email for the rest)."""
    actions = [ACTIONS[r] for r in reasons if r in ACTIONS]
    if level != "low" and any(r not in ACTIONS for r in reasons):
        actions.append(RE_ENGAGE)
    return actions


def send_re_engagement(db: Session, *, actor: Actor, user_id: int, base_url: str) -> User:
    """Email the user the organization's re-engagement template (one click, audited).

    Raises:
        PermissionDenied: the actor may not update users.
        NotFound: no such user within the actor's reach.
        Conflict: the user cannot get email (not active).
    """
    user = users.user_in_reach(db, actor=actor, user_id=user_id, permission=Permission.USERS_UPDATE)
    if user.status != "active":
        raise Conflict(
            f"{user.name} is {user.status}: a re-engagement email is for active users.",
            code="churn.not_active",
        )
    organization = db.get_one(Organization, user.organization_id)
    mail.enqueue(
        db,
        organization_id=organization.id,
        to=user.email,
        kind=EmailKind.RE_ENGAGEMENT,
        context=mail.email_context(organization, user, link=f"{base_url}/login", expires=utcnow()),
    )
    audit.record(
        db,
        actor=actor,
        action="user.re_engagement_sent",
        target_type="user",
        target_id=user.id,
        changes={"email": user.email},
    )
    return user
