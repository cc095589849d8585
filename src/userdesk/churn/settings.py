"""The organization's churn definition: read it, say it in words, change it."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from userdesk.access import service as access
from userdesk.access.rules import Actor, Permission
from userdesk.audit import service as audit
from userdesk.churn import definition
from userdesk.churn.definition import ChurnDefinition
from userdesk.organizations.models import Organization

DAYS: dict[str, Any] = {"minimum": 1, "maximum": 365}
A_TYPE: dict[str, Any] = {"pattern": definition.TYPE_PATTERN.pattern}


class ChurnDefinitionWrite(BaseModel):
    kind: str = Field(
        default=definition.INACTIVITY,
        json_schema_extra={"enum": [definition.INACTIVITY, definition.EVENT]},
        description='"inactivity": no event (of activity_types, or any) for `days`; '
        '"event": an event of `event_type` happens within `days`.',
    )
    days: int = Field(default=30, json_schema_extra=DAYS, description="The horizon, in days.")
    event_type: str | None = Field(
        default=None,
        json_schema_extra=A_TYPE,
        description='For "event": the type that is churn (subscription.cancelled).',
    )
    activity_types: list[str] = Field(
        default=[],
        json_schema_extra={"items": {"type": "string", **A_TYPE}},
        description='For "inactivity": the types that count as activity (all: []).',
    )
    scope_type: str | None = Field(
        default=None,
        json_schema_extra=A_TYPE,
        description="Who is in scope: users who did this type (any event: null) in the "
        "scope_days before.",
    )
    scope_days: int = Field(default=30, json_schema_extra=DAYS)


class ChurnDefinitionRead(ChurnDefinitionWrite):
    predicts: str = Field(description="What is predicted, in words.")

    @classmethod
    def of(cls, found: ChurnDefinition) -> ChurnDefinitionRead:
        return cls(**found.as_setting(), predicts=found.sentence())


def of_organization(organization: Organization) -> ChurnDefinition:
    """What churn means for ORGANIZATION (the default: no activity for 30 days)."""
    return definition.of_setting(organization.settings.get(definition.SETTING))


def read(db: Session, *, actor: Actor) -> ChurnDefinition:
    """The organization's churn definition.

    Raises:
        PermissionDenied: the actor may not manage settings.
    """
    access.require(actor, Permission.SETTINGS_MANAGE)
    return of_organization(db.get_one(Organization, actor.organization_id))


def change(db: Session, *, actor: Actor, given: ChurnDefinitionWrite) -> ChurnDefinition:
    """Set what churn means for the organization (audited; used by the next scoring and
    backtest).

    Raises:
        PermissionDenied: the actor may not manage settings.
        InvalidInput: as definition.checked, naming the field.
    """
    access.require(actor, Permission.SETTINGS_MANAGE)
    found = definition.checked(
        kind=given.kind,
        days=given.days,
        event_type=given.event_type,
        activity_types=tuple(given.activity_types),
        scope_type=given.scope_type,
        scope_days=given.scope_days,
    )
    organization = db.get_one(Organization, actor.organization_id)
    before = organization.settings.get(definition.SETTING)
    if before != found.as_setting():
        organization.settings = {**organization.settings, definition.SETTING: found.as_setting()}
        db.flush()
        audit.record(
            db,
            actor=actor,
            action="organization.settings_changed",
            target_type="organization",
            target_id=organization.id,
            changes={definition.SETTING: found.as_setting()},
        )
    return found
