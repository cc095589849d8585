"""/api/v1/audit: the audit log, filterable."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from userdesk.audit import service as audit
from userdesk.audit.schemas import AuditPage
from userdesk.web.api.params import IsoDate
from userdesk.web.deps import CurrentActor, DbSession
from userdesk.web.filters import audit_filter

router = APIRouter(prefix="/audit", tags=["audit"])


@router.get("", response_model=AuditPage)
async def list_audit(
    db: DbSession,
    actor: CurrentActor,
    actor_name: str | None = None,
    action: str | None = None,
    target: str | None = None,
    since: IsoDate | None = None,
    until: IsoDate | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=audit.PAGE_MAX)] = audit.PAGE_SIZE,
) -> AuditPage:
    """Newest first. `action` is an action or a prefix ending in a dot (`user.`);
    `target` a user's id or email; `since` and `until` dates (UTC, `until` included).
    Each event on a user names them as they are now (`target_name`)."""
    where = audit_filter(actor_name, action, target, since, until)
    return audit.list_events(db, actor=actor, where=where, cursor=cursor, limit=limit)
