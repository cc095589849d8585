"""Business hours of the organization and of each support agent; Online or Away."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Integer, bindparam, select
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session

from userdesk.access import service as access
from userdesk.access.rules import AGENT, Actor, Permission
from userdesk.audit import service as audit
from userdesk.availability.rules import DEFAULT, BusinessHours, hours_problems, parse_hours
from userdesk.db.base import utcnow
from userdesk.db.prepared import Prepared
from userdesk.errors import Conflict, InvalidInput
from userdesk.organizations.models import Organization
from userdesk.users import service as users
from userdesk.users.models import User
from userdesk.users.rules import SIGN_IN_STATUSES


def organization_hours(organization: Organization) -> BusinessHours:
    return _hours_in(organization.settings)


def _hours_in(settings: dict[str, Any]) -> BusinessHours:
    """The business hours an organization's SETTINGS hold (the default when none)."""
    return parse_hours(settings.get("business_hours", DEFAULT))


def read_organization_hours(db: Session, *, actor: Actor) -> BusinessHours:
    """Raises: PermissionDenied (no users.read)."""
    access.require(actor, Permission.USERS_READ)
    return organization_hours(db.get_one(Organization, actor.organization_id))


def user_availability(db: Session, user: User, now: datetime) -> str | None:
    organization = db.get_one(Organization, user.organization_id)
    is_agent = access.user_holds_builtin(db, user, AGENT.name)
    return availability(organization, user, is_agent=is_agent, now=now)


def _presence(hours: BusinessHours, status: str, now: datetime) -> str:
    """An agent's "online" or "away" under HOURS (theirs, else the organization's)."""
    return "online" if hours.is_open(now) and status in SIGN_IN_STATUSES else "away"


def availability(
    organization: Organization, user: User, *, is_agent: bool, now: datetime
) -> str | None:
    """ "online" or "away" for a support agent (by their own hours, else the
    organization's); None for anyone else."""
    if not is_agent:
        return None
    hours = parse_hours(user.business_hours) if user.business_hours else None
    return _presence(hours or organization_hours(organization), user.status, now)


@lru_cache(maxsize=64)
def _listed_agents(dialect: Dialect, agents: int) -> Prepared:
    """The own hours and status of AGENTS listed agents, and their organization's hours,
    in one statement of columns, compiled once per dialect and size (values
    `organization_id`, `agent_<i>`): a list page asks for it each time it shows an agent,
    and an expanding IN was most of its cost."""
    ids = [bindparam(f"agent_{i}", type_=Integer) for i in range(agents)]
    statement = (
        select(User.id, User.status, User.business_hours, Organization.settings)
        .join(Organization, Organization.id == User.organization_id)
        .where(
            User.organization_id == bindparam("organization_id", type_=Integer),
            User.id.in_(ids),
        )
    )
    names = ["organization_id", *(b.key for b in ids)]
    return Prepared.named(dialect, statement, names, fixed=True)


def of_listed(db: Session, organization_id: int, views: list[dict[str, Any]]) -> dict[str, str]:
    """Online or Away for the support agents among listed users (by id)."""
    agent = AGENT.name
    agents = [int(v["id"]) for v in views if any(r["name"] == agent for r in v["roles"])]
    if not agents:
        return {}
    connection = db.connection()
    values: dict[str, Any] = {f"agent_{i}": user_id for i, user_id in enumerate(agents)}
    values["organization_id"] = organization_id
    rows = _listed_agents(connection.dialect, len(agents)).rows(connection, (), values)
    now = utcnow()
    found: dict[str, str] = {}
    shared: BusinessHours | None = None  # the organization's, read once
    for user_id, status, own_hours, settings in rows:
        if own_hours:
            hours = parse_hours(own_hours)
        else:
            shared = hours = shared or _hours_in(settings)
        found[str(user_id)] = _presence(hours, status, now)
    return found


def _checked(data: Any) -> dict[str, Any]:
    if problems := hours_problems(data):
        raise InvalidInput("The business hours are not valid.", fields=problems)
    return dict(parse_hours(data).to_json())


def set_organization_hours(db: Session, *, actor: Actor, data: Any) -> BusinessHours:
    """Raises: PermissionDenied (no settings.manage); InvalidInput naming the field."""
    access.require(actor, Permission.SETTINGS_MANAGE)
    hours = _checked(data)
    organization = db.get_one(Organization, actor.organization_id)
    before = organization.settings.get("business_hours")
    organization.settings = {**organization.settings, "business_hours": hours}
    audit.record(
        db,
        actor=actor,
        action="organization.business_hours_changed",
        target_type="organization",
        target_id=organization.id,
        changes={"business_hours": {"from": before, "to": hours}},
    )
    return parse_hours(hours)


def set_agent_hours(db: Session, *, actor: Actor, user_id: int, data: Any | None) -> User:
    """An agent's own hours (None: back to the organization's).

    Raises:
        PermissionDenied: no users.update over the user.
        NotFound: no such user within reach.
        Conflict: the user is not a support agent.
        InvalidInput: bad hours, naming the field.
    """
    user = users.user_in_reach(db, actor=actor, user_id=user_id, permission=Permission.USERS_UPDATE)
    if not access.user_holds_builtin(db, user, AGENT.name):
        raise Conflict(f"{user.name} is not a support agent.", code="availability.not_agent")
    hours = None if data is None else _checked(data)
    before, user.business_hours = user.business_hours, hours
    audit.record(
        db,
        actor=actor,
        action="user.business_hours_changed",
        target_type="user",
        target_id=user.id,
        changes={"business_hours": {"from": before, "to": hours}},
    )
    return user
