"""Scoring runs and the score of each user in each run (the history is kept)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from userdesk.db.base import Base, Id, OrgScoped, Timestamped, UTCDateTime


class ChurnRun(OrgScoped, Timestamped, Base):
    """One scoring of an organization's users as of a moment, and how it was calibrated."""

    __tablename__ = "churn_runs"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    as_of: Mapped[datetime] = mapped_column(UTCDateTime)
    model: Mapped[str] = mapped_column(String(32))
    users: Mapped[int] = mapped_column(Integer, default=0)
    # Platt scaling of the raw score, and the backtest it was fitted on.
    calibration: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ChurnScore(OrgScoped, Base):
    __tablename__ = "churn_scores"
    __table_args__ = (
        Index("ix_churn_scores_user_run", "user_id", "run_id"),
        # A run's scores, most likely to churn first (ties by user): the dashboard's users
        # most at risk, and GET /api/v1/churn/runs/{id}/scores a page at a time.
        Index("ix_churn_scores_run_probability_user", "run_id", "probability", "user_id"),
    )
    organization_indexed = False  # read by user; removed with the run or the user

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    run_id: Mapped[int] = mapped_column(Id, ForeignKey("churn_runs.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(Id, ForeignKey("users.id", ondelete="CASCADE"))
    probability: Mapped[float] = mapped_column(Float)
    level: Mapped[str] = mapped_column(String(8))
    reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
