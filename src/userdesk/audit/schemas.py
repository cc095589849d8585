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
    reason: str | None
    changes: dict[str, Any]
    ip: str | None
    user_agent: str | None

    @classmethod
    def of(cls, event: AuditEvent) -> AuditEventRead:
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
            reason=event.reason,
            changes=event.changes,
            ip=event.ip,
            user_agent=event.user_agent,
        )


class AuditPage(BaseModel):
    items: list[AuditEventRead]
    next_cursor: str | None
