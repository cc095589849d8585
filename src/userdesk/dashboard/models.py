"""Daily counts of users by team and status, and each scoring run's counts by level.

Both are small summaries written by the worker so that the dashboard never scans the
users or the scores: a day has a row per (team, status), a run a row per (team, level).
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import Date, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from userdesk.db.base import Base, Id, OrgScoped


class StatusDay(OrgScoped, Base):
    """How many users of a team (or of no team) were in a status on a day."""

    __tablename__ = "user_status_days"
    __table_args__ = (Index("ix_user_status_days_org_day", "organization_id", "day"),)
    organization_indexed = False  # led by the index above

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    day: Mapped[date] = mapped_column(Date)
    team_id: Mapped[int | None] = mapped_column(Id)  # no foreign key: history outlives teams
    status: Mapped[str] = mapped_column(String(16))
    users: Mapped[int] = mapped_column(Integer)


class RunLevel(OrgScoped, Base):
    """How many users of a team (or of no team) a scoring run put at a level."""

    __tablename__ = "churn_run_levels"
    __table_args__ = (Index("ix_churn_run_levels_run", "run_id"),)
    organization_indexed = False  # read by run

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    run_id: Mapped[int] = mapped_column(Id, ForeignKey("churn_runs.id", ondelete="CASCADE"))
    team_id: Mapped[int | None] = mapped_column(Id)
    level: Mapped[str] = mapped_column(String(8))
    users: Mapped[int] = mapped_column(Integer)
