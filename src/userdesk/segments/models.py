"""The segment table."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from userdesk.db.base import Base, Id, OrgScoped, Timestamped, UTCDateTime, utcnow


class Segment(OrgScoped, Timestamped, Base):
    __tablename__ = "segments"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    query: Mapped[str] = mapped_column(String(2000), default="")
    sort: Mapped[str] = mapped_column(String(32), default="name")
    shared: Mapped[bool] = mapped_column(Boolean, default=False)
    # The custom fields (their keys) shown as extra columns of the list (migration 0032).
    columns: Mapped[list[str] | None] = mapped_column(JSON)
    owner_id: Mapped[int | None] = mapped_column(
        Id, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
