"""What is shown of audit events."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from userdesk.audit.models import AuditEvent


class AuditEventRead(BaseModel):
    id: str
    occurred_at: datetime
    action: str
    actor: str
    actor_user_id: str | None
    actor_api_key_id: str | None
    impersonator_id: str | None
    impersonator: str | None  # the admin's name, when the actor was being impersonated
    target_type: str | None
    target_id: str | None
    target_name: str | None = None  # the target user's name (or email) as it is now
    reason: str | None
    changes: dict[str, Any]
    ip: str | None
    user_agent: str | None

    @classmethod
    def of(cls, event: AuditEvent, target_name: str | None = None) -> AuditEventRead:
        def ref(value: int | None) -> str | None:
            return str(value) if value is not None else None

        return cls(
            id=str(event.id),
            occurred_at=event.occurred_at,
            action=event.action,
            actor=event.actor_name,
            actor_user_id=ref(event.actor_user_id),
            actor_api_key_id=ref(event.actor_api_key_id),
            impersonator_id=ref(event.impersonator_id),
            impersonator=event.impersonator_name,
            target_type=event.target_type,
            target_id=event.target_id,
            target_name=target_name,
            reason=event.reason,
            changes=event.changes,
            ip=event.ip,
            user_agent=event.user_agent,
        )


class AuditPage(BaseModel):
    items: list[AuditEventRead]
    next_cursor: str | None
