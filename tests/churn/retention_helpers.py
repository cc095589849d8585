"""Arranging a scored user for the retention tests, without running a scoring."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from userdesk.audit.models import AuditEvent
from userdesk.churn.models import ChurnRun, ChurnScore
from userdesk.db.base import utcnow
from userdesk.organizations.models import Organization
from userdesk.users.models import User


def scored(
    db: Session, org: Organization, user: User, level: str, reasons: list[str], p: float = 0.7
) -> None:
    """Give USER a churn score of LEVEL with REASONS, as a scoring run would."""
    run = ChurnRun(organization_id=org.id, as_of=utcnow(), model="test", calibration={})
    db.add(run)
    db.flush()
    db.add(
        ChurnScore(
            organization_id=org.id,
            run_id=run.id,
            user_id=user.id,
            probability=p,
            level=level,
            reasons=reasons,
        )
    )
    user.churn_level = level
    db.flush()


def audited(db: Session, action: str, user: User) -> int:
    """How many audit events of ACTION name USER."""
    db.expire_all()
    return (
        db.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == action, AuditEvent.target_id == str(user.id))
        )
        or 0
    )
