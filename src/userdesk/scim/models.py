"""SCIM provisioning tokens (the secret is stored only as its SHA-256) and the log of the
requests made with them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, SmallInteger, String, text
from sqlalchemy.orm import Mapped, mapped_column

from userdesk.db.base import Base, Id, OrgScoped, Timestamped, UTCDateTime, utcnow


class ScimToken(OrgScoped, Timestamped, Base):
    """A bearer token for /scim/v2 only: it acts with the provisioning role, nothing else."""

    __tablename__ = "scim_tokens"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by_id: Mapped[int | None] = mapped_column(
        Id, ForeignKey("users.id", ondelete="SET NULL")
    )
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ScimRequest(OrgScoped, Base):
    """One call an identity provider made to /scim/v2 with a token, and its outcome: the
    request log of Settings > Provisioning. No body, header or token is kept, and the
    query's secret-looking parameters are redacted (scim.request_log)."""

    __tablename__ = "scim_requests"
    organization_indexed = False  # the indexes below lead with it
    __table_args__ = (
        Index("ix_scim_requests_organization_id_id", "organization_id", "id"),
        # The errors filter: the latest failed calls, without reading the successful ones.
        Index(
            "ix_scim_requests_errors",
            "organization_id",
            "id",
            sqlite_where=text("status >= 400"),
            postgresql_where=text("status >= 400"),
        ),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    token_id: Mapped[int | None] = mapped_column(
        Id, ForeignKey("scim_tokens.id", ondelete="SET NULL")
    )
    method: Mapped[str] = mapped_column(String(10))
    path: Mapped[str] = mapped_column(String(500))
    status: Mapped[int] = mapped_column(SmallInteger)
    scim_type: Mapped[str | None] = mapped_column(String(40))
    detail: Mapped[str | None] = mapped_column(String(300))
    duration_ms: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
