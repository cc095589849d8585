"""The activity_event table."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from userdesk.db.base import Base, Id, OrgScoped, UTCDateTime

SIGN_IN_LOCKED = "sign_in_locked"  # too many wrong passwords: recorded by us, not done by them
NOT_THE_USERS_DOING = (SIGN_IN_LOCKED,)  # in the timeline, but no sign of the user's activity


class ActivityEvent(OrgScoped, Base):
    __tablename__ = "activity_events"
    __table_args__ = (
        # A user's events in time, with their type: churn scoring reads no row (0037).
        Index("ix_activity_events_user_time_type", "user_id", "occurred_at", "type"),
        # The host product's own id for an event: sending it twice records it once. Only
        # the events that have one (0042).
        Index(
            "ix_activity_events_external_id",
            "organization_id",
            "external_id",
            unique=True,
            sqlite_where=text("external_id IS NOT NULL"),
            postgresql_where=text("external_id IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    user_id: Mapped[int] = mapped_column(Id, ForeignKey("users.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(64))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    properties: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    external_id: Mapped[str | None] = mapped_column(String(100))
