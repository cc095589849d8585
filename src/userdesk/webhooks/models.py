"""Webhook endpoints, the messages written for them with each change, and each attempt
to deliver one."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from userdesk.db.base import Base, Id, OrgScoped, Timestamped, UTCDateTime, utcnow


class WebhookEndpoint(OrgScoped, Timestamped, Base):
    """Where an organization wants its events sent, and the secret they are signed with.

    The secret is kept sealed (AES-GCM under a key derived from the secret key): it must be
    read back to sign, and no surface but the answer to create or rotate shows it.
    """

    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    description: Mapped[str] = mapped_column(String(500), default="")
    # The event types it wants; empty: every type.
    event_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # Why it is not enabled: paused by an admin, 410 Gone, failing for three days.
    disabled_reason: Mapped[str | None] = mapped_column(String(500))
    secret_sealed: Mapped[str] = mapped_column(String(300))
    # During a rotation's grace period messages are signed with both secrets.
    previous_secret_sealed: Mapped[str | None] = mapped_column(String(300))
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Since when every attempt has failed (None: the last one succeeded, or none yet).
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by_id: Mapped[int | None] = mapped_column(
        Id, ForeignKey("users.id", ondelete="SET NULL")
    )
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class WebhookMessage(OrgScoped, Timestamped, Base):
    """One event for one endpoint, written in the transaction of the change it tells of.

    `body` is the JSON sent, fixed when written, so that every retry sends (and signs) the
    same bytes under the same `uid` (the webhook-id header). Messages about one user reach
    an endpoint in the order they were written: one is sent only when no earlier pending
    message of the same endpoint and user is left.
    """

    __tablename__ = "webhook_messages"
    __table_args__ = (
        Index("ix_webhook_messages_due", "status", "next_attempt_at"),
        Index("ix_webhook_messages_endpoint_user", "endpoint_id", "user_id", "id"),
        Index("ix_webhook_messages_endpoint", "endpoint_id", "id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    uid: Mapped[str] = mapped_column(String(40), unique=True)  # msg_…, the webhook-id
    endpoint_id: Mapped[int] = mapped_column(
        Id, ForeignKey("webhook_endpoints.id", ondelete="CASCADE")
    )
    event_type: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[int | None] = mapped_column(Id)  # whom it is about: the order key
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending|delivered|failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    locked_by: Mapped[str | None] = mapped_column(String(64))
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)


class WebhookAttempt(OrgScoped, Base):
    """One try at delivering a message: what the endpoint answered, and how fast."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (Index("ix_webhook_attempts_message", "message_id", "id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    message_id: Mapped[int] = mapped_column(
        Id, ForeignKey("webhook_messages.id", ondelete="CASCADE")
    )
    endpoint_id: Mapped[int] = mapped_column(
        Id, ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), index=True
    )
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    status_code: Mapped[int | None] = mapped_column(Integer)  # None: no answer
    duration_ms: Mapped[int] = mapped_column(Integer, default=0)
    response: Mapped[str | None] = mapped_column(String(1024))  # the answer's first KB
    error: Mapped[str | None] = mapped_column(String(500))  # refused, timed out, …
    outcome: Mapped[str] = mapped_column(String(16))  # delivered | failed
