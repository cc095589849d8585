"""An outreach assignment: a support agent asked to contact a user, until marked done."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from userdesk.db.base import Base, Id, OrgScoped, Timestamped, UTCDateTime


class OutreachAssignment(OrgScoped, Timestamped, Base):
    """Who is to reach out to whom, who asked, why (the churn reasons then), and when done."""

    __tablename__ = "outreach_assignments"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    user_id: Mapped[int] = mapped_column(Id, ForeignKey("users.id", ondelete="CASCADE"), index=True)
    agent_id: Mapped[int] = mapped_column(
        Id, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    assigned_by_id: Mapped[int | None] = mapped_column(
        Id, ForeignKey("users.id", ondelete="SET NULL")
    )
    assigned_by_name: Mapped[str] = mapped_column(String(300))
    note: Mapped[str] = mapped_column(String(1000), default="")
    # The user's churn reasons when the assignment was made.
    reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    done_by_name: Mapped[str | None] = mapped_column(String(300))
