"""The organization's SCIM settings, kept in organizations.settings.

`scim_creates_teams` (default off): a user provisioned with an enterprise `department`
that names no team of the organization joins a new team of that name; off, the user is
provisioned without a team (see userdesk.scim.users). Changed on Settings > Provisioning
and by `userdesk scim-settings`, by who manages SCIM (scim.manage over the whole
organization, as for its tokens), audited.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from userdesk.access.rules import Actor
from userdesk.audit import service as audit
from userdesk.organizations.models import Organization
from userdesk.scim.tokens import require_manager

CREATES_TEAMS = "scim_creates_teams"


def creates_teams(db: Session, organization_id: int) -> bool:
    """Whether SCIM creates the team a department names when there is none."""
    organization = db.get_one(Organization, organization_id)
    return (organization.settings or {}).get(CREATES_TEAMS) is True


def set_creates_teams(db: Session, *, actor: Actor, value: bool) -> bool:
    """Turn "SCIM creates missing teams" on or off (audited when it changes).

    Raises:
        PermissionDenied: the actor does not hold scim.manage over the whole organization.
    """
    require_manager(actor)
    organization = db.get_one(Organization, actor.organization_id)
    settings = organization.settings or {}
    if settings.get(CREATES_TEAMS, False) is not value:
        organization.settings = {**settings, CREATES_TEAMS: value}
        db.flush()
        audit.record(
            db,
            actor=actor,
            action="organization.settings_changed",
            target_type="organization",
            target_id=organization.id,
            changes={CREATES_TEAMS: {"from": settings.get(CREATES_TEAMS, False), "to": value}},
        )
    return value
