"""Sign-in sessions and API keys. Secrets are stored only as hashes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from userdesk.db.base import Base, Id, OrgScoped, Timestamped, UTCDateTime


class LoginSession(OrgScoped, Timestamped, Base):
    """A signed-in browser. The cookie holds the token; the row holds its SHA-256."""

    __tablename__ = "sessions"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(Id, ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(500))
    # Set when an admin opened this session to act as the user (impersonation).
    impersonation_id: Mapped[int | None] = mapped_column(
        Id, ForeignKey("impersonations.id", ondelete="CASCADE")
    )


class ApiKey(OrgScoped, Timestamped, Base):
    """A key for the API acting with one role (and, for a team-scoped role, one team)."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role_id: Mapped[int] = mapped_column(Id, ForeignKey("roles.id", ondelete="CASCADE"))
    team_id: Mapped[int | None] = mapped_column(Id, ForeignKey("teams.id", ondelete="CASCADE"))
    created_by_id: Mapped[int | None] = mapped_column(
        Id, ForeignKey("users.id", ondelete="SET NULL")
    )
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class UserToken(OrgScoped, Timestamped, Base):
    """A single-use link sent by email: to verify an address or to (re)set a password."""

    __tablename__ = "user_tokens"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    user_id: Mapped[int] = mapped_column(Id, ForeignKey("users.id", ondelete="CASCADE"), index=True)
    purpose: Mapped[str] = mapped_column(String(32))  # verify_email | set_password
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ThrottleHit(Base):
    """One counted attempt at a rate-limited action (auth.throttle), or one failed sign-in.

    KEY is the SHA-256 of what is limited (an IP, an email, an account), so the table holds
    no addresses. Rows older than the longest window are pruned. An IP or a typed email
    spans organizations: their rows have no organization_id.
    """

    __tablename__ = "throttle_hits"
    __table_args__ = (Index("ix_throttle_hits_action_key_at", "action", "key", "at"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    organization_id: Mapped[int | None] = mapped_column(
        Id, ForeignKey("organizations.id", ondelete="CASCADE")
    )
    action: Mapped[str] = mapped_column(String(40))
    key: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
