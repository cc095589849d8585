"""The organization table."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from userdesk.db.base import Base, Id, Timestamped


class Organization(Timestamped, Base):
    __tablename__ = "organizations"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    slug: Mapped[str] = mapped_column(String(63), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # A new random number at each change of its user fields (users.attributes.forget_schema).
    user_fields_version: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
