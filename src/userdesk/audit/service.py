"""Writing audit events: one row per admin action, hash-chained per organization."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from userdesk.access import service as access
from userdesk.access.rules import Actor, Permission
from userdesk.audit.models import AuditEvent
from userdesk.db.base import utcnow
from userdesk.organizations.models import Organization


def event_hash(event: AuditEvent) -> str:
    """The SHA-256 over the event's content and the previous event's hash."""
    body = {
        "organization_id": event.organization_id,
        "occurred_at": event.occurred_at.isoformat(),
        "actor_user_id": event.actor_user_id,
        "actor_api_key_id": event.actor_api_key_id,
        "impersonator_id": event.impersonator_id,
        "actor_name": event.actor_name,
        "action": event.action,
        "target_type": event.target_type,
        "target_id": event.target_id,
        "ip": event.ip,
        "user_agent": event.user_agent,
        "reason": event.reason,
        "changes": event.changes,
        "prev_hash": event.prev_hash,
    }
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


def record(
    db: Session,
    *,
    actor: Actor,
    action: str,
    target_type: str | None = None,
    target_id: int | str | None = None,
    changes: dict[str, Any] | None = None,
    reason: str | None = None,
) -> AuditEvent:
    """Append one audit event in the caller's transaction."""
    # Lock the organization row so that concurrent writers chain one after the other.
    db.execute(
        select(Organization.id).where(Organization.id == actor.organization_id).with_for_update()
    )
    prev_hash = db.scalar(
        select(AuditEvent.hash)
        .where(AuditEvent.organization_id == actor.organization_id)
        .order_by(AuditEvent.id.desc())
        .limit(1)
    )
    event = AuditEvent(
        organization_id=actor.organization_id,
        occurred_at=utcnow(),
        actor_user_id=actor.user_id,
        actor_api_key_id=actor.api_key_id,
        impersonator_id=None,
        actor_name=actor.name,
        action=action,
        target_type=target_type,
        target_id=None if target_id is None else str(target_id),
        ip=actor.ip,
        user_agent=actor.user_agent,
        reason=reason,
        changes=changes or {},
        prev_hash=prev_hash,
    )
    event.hash = event_hash(event)
    db.add(event)
    db.flush()
    return event


def recent_events(db: Session, *, actor: Actor, limit: int = 100) -> list[AuditEvent]:
    """The organization's newest audit events.

    Raises:
        PermissionDenied: the actor may not read the audit log.
    """
    access.require(actor, Permission.AUDIT_READ)
    return list(
        db.scalars(
            select(AuditEvent)
            .where(AuditEvent.organization_id == actor.organization_id)
            .order_by(AuditEvent.id.desc())
            .limit(limit)
        )
    )


@dataclass(frozen=True)
class ChainBreak:
    """The first event whose stored hash does not match its content or its predecessor."""

    organization_id: int
    event_id: int
    problem: str


def verify_chain(db: Session, *, organization_id: int | None = None) -> list[ChainBreak]:
    """Check every organization's hash chain (or one); the first break of each."""
    orgs = (
        [organization_id]
        if organization_id is not None
        else list(db.scalars(select(Organization.id).order_by(Organization.id)))
    )
    breaks = []
    for org in orgs:
        previous: str | None = None
        events = db.scalars(
            select(AuditEvent)
            .where(AuditEvent.organization_id == org)
            .order_by(AuditEvent.id)
            .execution_options(yield_per=1000)
        )
        for event in events:
            if event.prev_hash != previous:
                breaks.append(ChainBreak(org, event.id, "it does not point to the event before it"))
                break
            if event.hash != event_hash(event):
                breaks.append(ChainBreak(org, event.id, "its content does not match its hash"))
                break
            previous = event.hash
    return breaks
