"""Assigning a support agent to reach out to a user at risk, reassigning, marking it done.

Whoever may update a user may ask an agent within their reach to contact them; the agent
is emailed (through the outbox) a link to the user's page, where the agent, or whoever may
update the user, marks the outreach done.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from userdesk.access import service as access
from userdesk.access.models import Role
from userdesk.access.rules import AGENT, Actor, Permission
from userdesk.audit import service as audit
from userdesk.availability import service as availability
from userdesk.churn.models import ChurnScore
from userdesk.db.base import utcnow
from userdesk.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from userdesk.mail import service as mail
from userdesk.mail.rules import EmailKind
from userdesk.organizations.models import Organization
from userdesk.outreach.models import OutreachAssignment
from userdesk.outreach.schemas import AgentChoice, OutreachRead
from userdesk.users import service as users
from userdesk.users.models import User, UserRole
from userdesk.users.rules import SIGN_IN_STATUSES
from userdesk.validation import parse_id

NOTE_MAX = 1000


def _agents_in_reach(actor: Actor) -> Select[User]:
    """Users who can sign in, hold the built-in Agent role, and whom ACTOR may read."""
    return (
        select(User)
        .join(UserRole, UserRole.user_id == User.id)
        .join(Role, Role.id == UserRole.role_id)
        .where(
            Role.organization_id == actor.organization_id,
            Role.name == AGENT.name,
            Role.builtin.is_(True),
            User.status.in_(sorted(s.value for s in SIGN_IN_STATUSES)),
            access.users_in_scope(actor, Permission.USERS_READ),
        )
    )


def _choice(organization: Organization, agent: User, now: datetime) -> AgentChoice:
    return AgentChoice(
        id=str(agent.id),
        name=agent.name,
        email=agent.email,
        presence=availability.availability(organization, agent, is_agent=True, now=now) or "away",
    )


def agents(db: Session, *, actor: Actor, user_id: int) -> list[AgentChoice]:
    """The support agents the actor may ask to reach out to the user, Online or Away.

    Raises:
        PermissionDenied: the actor may not update users.
        NotFound: no such user within the actor's reach.
    """
    user = users.user_in_reach(db, actor=actor, user_id=user_id, permission=Permission.USERS_UPDATE)
    organization = db.get_one(Organization, actor.organization_id)
    now = utcnow()
    found = db.scalars(
        _agents_in_reach(actor)
        .where(User.id != user.id)
        .order_by(User.first_name, User.last_name, User.id)
    )
    return [_choice(organization, agent, now) for agent in found]


def _agent(db: Session, actor: Actor, agent_id: str, user: User) -> User:
    wanted = parse_id(agent_id)
    if wanted is None:
        raise InvalidInput(
            f"'{agent_id}' is not an agent's id.", fields={"agent_id": f"'{agent_id}' is not an id"}
        )
    if wanted == user.id:
        raise InvalidInput(
            f"{user.name} cannot reach out to themselves.",
            fields={"agent_id": f"'{agent_id}' is the user themselves"},
        )
    agent = db.scalar(_agents_in_reach(actor).where(User.id == wanted))
    if agent is None:
        raise InvalidInput(
            f"'{agent_id}' is not a support agent within your reach.",
            fields={
                "agent_id": f"'{agent_id}' is not an active user with the Agent role you manage"
            },
        )
    return agent


def _note(note: str) -> str:
    note = note.strip()
    if len(note) > NOTE_MAX:
        raise InvalidInput(
            f"The note is longer than {NOTE_MAX} characters.",
            fields={"note": f"'{note[:30]}…' has {len(note)} characters; the most is {NOTE_MAX}"},
        )
    return note


def _open(db: Session, user_id: int) -> OutreachAssignment | None:
    return db.scalar(
        select(OutreachAssignment)
        .where(OutreachAssignment.user_id == user_id, OutreachAssignment.done_at.is_(None))
        .order_by(OutreachAssignment.id.desc())
        .limit(1)
    )


def _latest_reasons(db: Session, user_id: int) -> list[str]:
    reasons = db.scalar(
        select(ChurnScore.reasons)
        .where(ChurnScore.user_id == user_id)
        .order_by(ChurnScore.run_id.desc())
        .limit(1)
    )
    return list(reasons or [])


def _email_agent(
    db: Session, row: OutreachAssignment, user: User, agent: User, base_url: str
) -> None:
    organization = db.get_one(Organization, user.organization_id)
    mail.enqueue(
        db,
        organization_id=organization.id,
        to=agent.email,
        kind=EmailKind.OUTREACH,
        context=mail.email_context(
            organization,
            agent,
            link=f"{base_url}/console/users/{user.id}",
            expires=utcnow(),
            at_risk={"name": user.name, "email": user.email},
            assigned_by=row.assigned_by_name,
            reasons="; ".join(row.reasons),
            note=row.note,
        ),
        user_id=user.id,
    )


def assign(
    db: Session, *, actor: Actor, user_id: int, agent_id: str, note: str, base_url: str
) -> OutreachAssignment:
    """Ask a support agent to reach out to the user; the agent is emailed (one click, audited).

    The user's churn reasons at this moment are kept with the assignment.

    Raises:
        PermissionDenied: the actor may not update users.
        NotFound: no such user within the actor's reach.
        InvalidInput: the agent is not a support agent within reach, or the note too long.
        Conflict: an agent is assigned to the user already (reassign it or mark it done).
    """
    user = users.user_in_reach(db, actor=actor, user_id=user_id, permission=Permission.USERS_UPDATE)
    agent = _agent(db, actor, agent_id, user)
    text = _note(note)
    current = _open(db, user.id)
    if current is not None:
        holder = db.get_one(User, current.agent_id)
        raise Conflict(
            f"{holder.name} is already to reach out to {user.name}: reassign the outreach "
            "or mark it done first.",
            code="outreach.open",
        )
    row = OutreachAssignment(
        organization_id=user.organization_id,
        user_id=user.id,
        agent_id=agent.id,
        assigned_by_id=actor.user_id,
        assigned_by_name=actor.name,
        note=text,
        reasons=_latest_reasons(db, user.id),
    )
    db.add(row)
    db.flush()
    _email_agent(db, row, user, agent, base_url)
    audit.record(
        db,
        actor=actor,
        action="user.outreach_assigned",
        target_type="user",
        target_id=user.id,
        changes={
            "outreach": str(row.id),
            "agent": agent.name,
            "note": text,
            "reasons": row.reasons,
        },
    )
    return row


def _assignment(db: Session, user: User, assignment_id: int) -> OutreachAssignment:
    row = db.scalar(
        select(OutreachAssignment).where(
            OutreachAssignment.id == assignment_id, OutreachAssignment.user_id == user.id
        )
    )
    if row is None:
        raise NotFound(f"No outreach {assignment_id} for {user.name}.", code="outreach.not_found")
    if row.done_at is not None:
        raise Conflict(
            f"The outreach was marked done on {row.done_at:%Y-%m-%d}.", code="outreach.done"
        )
    return row


def reassign(
    db: Session,
    *,
    actor: Actor,
    user_id: int,
    assignment_id: int,
    agent_id: str,
    note: str | None,
    base_url: str,
) -> OutreachAssignment:
    """Give an open outreach to another agent, who is emailed (audited).

    Raises:
        PermissionDenied: the actor may not update users.
        NotFound: no such user within reach, or no such outreach for them.
        InvalidInput: not a support agent within reach, the same agent, or a too long note.
        Conflict: the outreach is done.
    """
    user = users.user_in_reach(db, actor=actor, user_id=user_id, permission=Permission.USERS_UPDATE)
    row = _assignment(db, user, assignment_id)
    agent = _agent(db, actor, agent_id, user)
    if agent.id == row.agent_id:
        raise InvalidInput(
            f"{agent.name} has this outreach already.",
            fields={"agent_id": f"'{agent_id}' is the agent assigned now"},
        )
    before = db.get_one(User, row.agent_id)
    row.agent_id = agent.id
    if note is not None:
        row.note = _note(note)
    db.flush()
    _email_agent(db, row, user, agent, base_url)
    audit.record(
        db,
        actor=actor,
        action="user.outreach_reassigned",
        target_type="user",
        target_id=user.id,
        changes={"outreach": str(row.id), "agent": {"from": before.name, "to": agent.name}},
    )
    return row


def mark_done(db: Session, *, actor: Actor, user_id: int, assignment_id: int) -> OutreachAssignment:
    """Close an outreach: by the agent it is assigned to, or by whoever may update the user.

    Raises:
        PermissionDenied: the actor is neither the agent nor may update the user.
        NotFound: no such user within the actor's reading reach, or no such outreach.
        Conflict: it is done already.
    """
    user = users.user_in_reach(db, actor=actor, user_id=user_id, permission=Permission.USERS_READ)
    row = _assignment(db, user, assignment_id)
    is_agent = actor.user_id is not None and actor.user_id == row.agent_id
    if not is_agent and not actor.covers(Permission.USERS_UPDATE, user.team_id):
        raise PermissionDenied(
            "Only the agent it is assigned to, or whoever may update the user (the "
            f"'{Permission.USERS_UPDATE.value}' permission), marks an outreach done.",
            code="permission_denied",
        )
    row.done_at = utcnow()
    row.done_by_name = actor.name
    db.flush()
    audit.record(
        db,
        actor=actor,
        action="user.outreach_done",
        target_type="user",
        target_id=user.id,
        changes={"outreach": str(row.id)},
    )
    return row


def of_user(db: Session, *, actor: Actor, user_id: int) -> list[OutreachAssignment]:
    """The user's outreach assignments, newest first.

    Raises:
        PermissionDenied: the actor may not read users.
        NotFound: no such user within reach.
    """
    user = users.user_in_reach(db, actor=actor, user_id=user_id, permission=Permission.USERS_READ)
    return list(
        db.scalars(
            select(OutreachAssignment)
            .where(OutreachAssignment.user_id == user.id)
            .order_by(OutreachAssignment.id.desc())
        )
    )


def read(db: Session, rows: list[OutreachAssignment]) -> list[OutreachRead]:
    """ROWS as the API shows them, each agent Online or Away now."""
    if not rows:
        return []
    organization = db.get_one(Organization, rows[0].organization_id)
    now = utcnow()
    agents_by_id = {
        agent.id: _choice(organization, agent, now)
        for agent in db.scalars(select(User).where(User.id.in_({r.agent_id for r in rows})))
    }
    return [
        OutreachRead(
            id=str(row.id),
            user_id=str(row.user_id),
            agent=agents_by_id[row.agent_id],
            assigned_by=row.assigned_by_name,
            note=row.note,
            reasons=row.reasons,
            created_at=row.created_at,
            done_at=row.done_at,
            done_by=row.done_by_name,
        )
        for row in rows
    ]
