"""Reading a user's churn risk, and the retention actions it suggests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from userdesk.access import service as access
from userdesk.access.models import Group
from userdesk.access.rules import Actor, Permission
from userdesk.audit import service as audit
from userdesk.churn.models import ChurnRun, ChurnScore
from userdesk.churn.rules import LEVELS
from userdesk.db.base import utcnow
from userdesk.db.paging import SortKey, fetch_page
from userdesk.errors import Conflict, InvalidInput, NotFound
from userdesk.mail import service as mail
from userdesk.mail.rules import EmailKind
from userdesk.organizations.models import Organization
from userdesk.outreach import service as outreach
from userdesk.outreach.schemas import AgentChoice, OutreachRead
from userdesk.users import service as users
from userdesk.users.models import User, UserGroup

HISTORY = 12  # runs shown in the score's trend

# The retention actions, each a button on the churn card and an API call.
RESEND_INVITATION = "resend_invitation"  # users.create
RESEND_VERIFICATION = "resend_verification"  # users.update
RE_ENGAGE = "send_re_engagement"  # users.update; active users only
ASSIGN_OUTREACH = "assign_outreach"  # users.update, to an Agent within reach
ADD_TO_GROUP = "add_to_group"  # users.update

# A reason (its first words, as churn.model words them) -> the actions that answer it,
# most fitting first. The one place where reasons meet actions.
ACTIONS: dict[str, tuple[str, ...]] = {
    "Never accepted the invitation": (RESEND_INVITATION,),
    "Email address not confirmed": (RESEND_VERIFICATION,),
    "No sign-in for": (RE_ENGAGE, ASSIGN_OUTREACH),
    "No activity for": (RE_ENGAGE, ASSIGN_OUTREACH),
    "No activity ever recorded": (RE_ENGAGE, ADD_TO_GROUP),
    "Activity down": (ASSIGN_OUTREACH, RE_ENGAGE),
    "Only": (RE_ENGAGE, ADD_TO_GROUP),  # "Only 2 events in the last 28 days"
    "Active in": (ADD_TO_GROUP, RE_ENGAGE),  # "Active in 3 of the last 12 weeks"
}
FELL = (ASSIGN_OUTREACH, RE_ENGAGE)  # "post.created fell 70% in 4 weeks (10 to 3)"


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
        actions=suggested(latest.reasons, latest.level, user.status),
    )


def suggested(reasons: list[str], level: str, status: str = "active") -> list[str]:
    """The retention actions that answer REASONS, most fitting first, each once.

    A low risk suggests nothing; a high one always suggests an agent's outreach; a
    re-engagement email is for active users only (the others cannot sign in).
    """
    if level == "low":
        return []
    actions: list[str] = []
    for reason in reasons:
        answers = next(
            (a for words, a in ACTIONS.items() if reason.startswith(words)),
            FELL if " fell " in reason else (RE_ENGAGE,),  # an event type's, by its name
        )
        actions.extend(answers)
    if level == "high":
        actions.append(ASSIGN_OUTREACH)
    if status != "active":
        actions = [a for a in actions if a != RE_ENGAGE]
    return list(dict.fromkeys(actions))


PERMISSIONS = {  # what each retention action takes, over the user
    RESEND_INVITATION: Permission.USERS_CREATE,
    RESEND_VERIFICATION: Permission.USERS_UPDATE,
    RE_ENGAGE: Permission.USERS_UPDATE,
    ASSIGN_OUTREACH: Permission.USERS_UPDATE,
    ADD_TO_GROUP: Permission.USERS_UPDATE,
}


@dataclass(frozen=True)
class RetentionCard:
    """What the churn card and the outreach card of a user's page offer the actor."""

    allowed: frozenset[str]  # the retention actions the actor may take on the user
    groups: list[Group]  # the groups the user is not in yet
    agents: list[AgentChoice]  # whom the actor may ask to reach out, Online or Away
    outreach: list[OutreachRead]  # the user's outreach assignments, newest first
    can_close: bool  # whether the actor may mark the open outreach done


def retention_card(db: Session, *, actor: Actor, user: User) -> RetentionCard:
    """The choices behind the retention buttons of USER's page (the services check again).

    Raises:
        PermissionDenied / NotFound: the actor may not read the user.
    """
    allowed = frozenset(a for a, p in PERMISSIONS.items() if actor.covers(p, user.team_id))
    groups: list[Group] = []
    if ADD_TO_GROUP in allowed:
        member_of = select(UserGroup.group_id).where(UserGroup.user_id == user.id)
        groups = list(
            db.scalars(
                select(Group)
                .where(Group.organization_id == user.organization_id, Group.id.not_in(member_of))
                .order_by(Group.name)
            )
        )
    rows = outreach.of_user(db, actor=actor, user_id=user.id)
    open_row = next((r for r in rows if r.done_at is None), None)
    return RetentionCard(
        allowed=allowed,
        groups=groups,
        agents=(
            outreach.agents(db, actor=actor, user_id=user.id) if ASSIGN_OUTREACH in allowed else []
        ),
        outreach=outreach.read(db, rows),
        can_close=open_row is not None
        and (
            actor.covers(Permission.USERS_UPDATE, user.team_id)
            or (actor.user_id is not None and actor.user_id == open_row.agent_id)
        ),
    )


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
        user_id=user.id,
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


# --- Scoring runs, and every score of a run -------------------------------------------


class ChurnRunRead(BaseModel):
    """One scoring of the organization's users."""

    id: str
    as_of: datetime = Field(description="The moment the users were scored as of.")
    model: str = Field(description="The model that scored them.")
    users: int = Field(description="Users scored (so far, while the run goes on).")
    started_at: datetime
    finished_at: datetime | None = Field(description="null while the run goes on.")
    predicts: str | None = Field(description="What the run predicted, in words.")

    @classmethod
    def of(cls, run: ChurnRun) -> ChurnRunRead:
        return cls(
            id=str(run.id),
            as_of=run.as_of,
            model=run.model,
            users=run.users,
            started_at=run.created_at,
            finished_at=run.finished_at,
            predicts=(run.calibration or {}).get("predicts"),
        )


class ChurnRunPage(BaseModel):
    items: list[ChurnRunRead]
    next_cursor: str | None


class RunScoreRead(BaseModel):
    """A user's score in a run: what GET /api/v1/users/{id}/churn says of its latest."""

    user_id: str
    email: str
    probability: float = Field(ge=0, le=1)
    level: str = Field(json_schema_extra={"enum": list(LEVELS)})
    reasons: list[str]


class RunScorePage(BaseModel):
    items: list[RunScoreRead]
    next_cursor: str | None


# Newest first; a run's scores most likely to churn first (ties by user id), along the
# index ix_churn_scores_run_probability_user.
RUNS_ORDER = SortKey("-id", (ChurnRun.id,), descending=True)
SCORES_ORDER = SortKey(
    "-probability", (ChurnScore.probability, ChurnScore.user_id), descending=True
)


def list_runs(
    db: Session, *, actor: Actor, limit: int = users.DEFAULT_PAGE_SIZE, cursor: str | None = None
) -> ChurnRunPage:
    """The organization's scoring runs, newest first, a page after CURSOR.

    Raises:
        PermissionDenied: the actor may not see users' churn (users.activity).
        InvalidInput: a limit out of range, or a cursor not from this list.
    """
    access.require(actor, Permission.USERS_ACTIVITY)
    rows, next_cursor = fetch_page(
        db,
        (ChurnRun.id,),
        [ChurnRun.organization_id == actor.organization_id],
        RUNS_ORDER,
        cursor=cursor,
        limit=users.page_size_checked(limit),
    )
    ids = [row[0] for row in rows]
    found = {run.id: run for run in db.scalars(select(ChurnRun).where(ChurnRun.id.in_(ids)))}
    return ChurnRunPage(
        items=[ChurnRunRead.of(found[run_id]) for run_id in ids], next_cursor=next_cursor
    )


def get_run(db: Session, *, actor: Actor, run_id: int) -> ChurnRun:
    """One scoring run of the actor's organization.

    Raises:
        PermissionDenied: the actor may not see users' churn (users.activity).
        NotFound: no such run in the organization.
    """
    access.require(actor, Permission.USERS_ACTIVITY)
    run = db.scalar(
        select(ChurnRun).where(
            ChurnRun.id == run_id, ChurnRun.organization_id == actor.organization_id
        )
    )
    if run is None:
        raise NotFound(f"No churn run {run_id}.", code="churn.run_not_found")
    return run


def run_scores(
    db: Session,
    *,
    actor: Actor,
    run_id: int,
    level: str | None = None,
    limit: int = users.DEFAULT_PAGE_SIZE,
    cursor: str | None = None,
) -> RunScorePage:
    """A page of RUN_ID's scores of the users within the actor's reach (a Team
    Administrator's: their team's), most likely to churn first, after CURSOR; LEVEL keeps
    one level's.

    Raises:
        PermissionDenied: the actor may not see users' churn (users.activity).
        NotFound: no such run in the organization.
        InvalidInput: an unknown level, a limit out of range, or a cursor not from this
            list.
    """
    run = get_run(db, actor=actor, run_id=run_id)
    if level is not None and level not in LEVELS:
        allowed = ", ".join(LEVELS)
        raise InvalidInput(
            f"Level '{level}' is not one of: {allowed}.",
            fields={"level": f"'{level}' is not one of: {allowed}"},
        )
    where: list[ColumnElement[bool]] = [ChurnScore.run_id == run.id]
    if level is not None:
        where.append(ChurnScore.level == level)
    if actor.team_scope(Permission.USERS_ACTIVITY) is not None:
        # Only the users the actor reaches (every score of the run is the organization's).
        reach = access.users_in_scope(actor, Permission.USERS_ACTIVITY)
        where.append(ChurnScore.user_id.in_(select(User.id).where(reach)))
    columns: tuple[Any, ...] = (
        ChurnScore.user_id,
        ChurnScore.probability,
        ChurnScore.level,
        ChurnScore.reasons,
    )
    rows, next_cursor = fetch_page(
        db, columns, where, SCORES_ORDER, cursor=cursor, limit=users.page_size_checked(limit)
    )
    ids = [row[0] for row in rows]
    emails = dict(db.execute(select(User.id, User.email).where(User.id.in_(ids))).all())
    return RunScorePage(
        items=[
            RunScoreRead(
                user_id=str(user_id),
                email=emails[user_id],
                probability=probability,
                level=score_level,
                reasons=list(reasons or []),
            )
            for user_id, probability, score_level, reasons in rows
        ],
        next_cursor=next_cursor,
    )
