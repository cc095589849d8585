"""A user's second step: the authenticator's shared secret (encrypted) and recovery codes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from userdesk.db.base import Base, Id, OrgScoped, Timestamped, UTCDateTime


class TwoStepFactor(OrgScoped, Timestamped, Base):
    """An authenticator app bound to a user; in force once ENABLED_AT is set."""

    __tablename__ = "two_step_factors"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    user_id: Mapped[int] = mapped_column(
        Id, ForeignKey("users.id", ondelete="CASCADE"), unique=True
    )
    # AES-GCM under a key derived from the secret key: nonce and ciphertext, base64.
    secret_encrypted: Mapped[str] = mapped_column(String(200))
    enabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The last time step whose code was accepted: a code works once.
    last_step: Mapped[int | None] = mapped_column(BigInteger)


class RecoveryCode(OrgScoped, Timestamped, Base):
    """A single-use code that stands in for the authenticator; only its SHA-256 is kept."""

    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    user_id: Mapped[int] = mapped_column(Id, ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
