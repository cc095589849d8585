"""The job table: what to do, how far it got, and what went wrong on the way."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from userdesk.db.base import Base, Id, OrgScoped, Timestamped, UTCDateTime


class Job(OrgScoped, Timestamped, Base):
    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_status", "status", "id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    kind: Mapped[str] = mapped_column(String(64))
    # draft (waiting for its owner) | queued | running | done | failed
    status: Mapped[str] = mapped_column(String(16), default="queued")
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    total: Mapped[int] = mapped_column(Integer, default=0)
    done: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    # Up to a few hundred {"id", "email", "problem"} of the items that failed.
    problems: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    cursor: Mapped[int] = mapped_column(Integer, default=0)  # the last item handled
    created_by_id: Mapped[int | None] = mapped_column(
        Id, ForeignKey("users.id", ondelete="SET NULL")
    )
    actor: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class JobItem(OrgScoped, Base):
    """What a job found for one of its items (an import's row), written with the batch
    that handled it: a row of its own, so that a long report is never rewritten."""

    __tablename__ = "job_items"
    organization_indexed = False

    job_id: Mapped[int] = mapped_column(
        Id, ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True
    )
    number: Mapped[int] = mapped_column(Integer, primary_key=True)  # the row in the file
    email: Mapped[str] = mapped_column(String(320), default="")
    fate: Mapped[str] = mapped_column(String(32))
    ok: Mapped[bool] = mapped_column(default=True)
    detail: Mapped[str | None] = mapped_column(Text)
