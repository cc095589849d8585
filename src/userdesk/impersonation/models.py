"""An impersonation: the link an admin made to act as a user, and the session it opened."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from userdesk.db.base import Base, Id, OrgScoped, Timestamped, UTCDateTime


class Impersonation(OrgScoped, Timestamped, Base):
    """Bound to the admin and the user; the link works once, the session it opens is capped."""

    __tablename__ = "impersonations"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    admin_id: Mapped[int] = mapped_column(Id, ForeignKey("users.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(Id, ForeignKey("users.id", ondelete="CASCADE"), index=True)
    reason: Mapped[str] = mapped_column(String(500))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    link_expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    session_ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Why it ended: "ended" by the admin, "signed out", or why it was cut short.
    end_reason: Mapped[str | None] = mapped_column(String(200))
