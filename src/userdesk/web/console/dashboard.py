"""/console/dashboard: users by status over time, churn levels, the users most at risk."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from userdesk.dashboard import charts
from userdesk.dashboard import service as dashboard
from userdesk.dashboard.charts import Bar, Series
from userdesk.users.rules import UserStatus
from userdesk.web.console.pages import render
from userdesk.web.deps import ConsoleAuth, DbSession

router = APIRouter(prefix="/console", tags=["console"], include_in_schema=False)

STATUS_COLORS = {
    "active": "#2fb344",
    "pending": "#206bc4",
    "disabled": "#f59f00",
    "banned": "#d63939",
    "trashed": "#667382",
    "deleted": "#ae3ec9",
}
LEVEL_COLORS = {"low": "#2fb344", "medium": "#f59f00", "high": "#d63939"}


def figures(board: dashboard.Dashboard) -> dict[str, Any]:
    """The dashboard's charts (SVG markup) and the rows of the tables beside them."""
    history = board.statuses
    labels = [day.isoformat() for day in history.days]
    status_series = [
        Series(UserStatus(s).label, history.series[s], STATUS_COLORS[s])
        for s in dashboard.SHOWN_STATUSES
    ]
    first, last = (labels[0], labels[-1]) if labels else ("", "")
    statuses_svg = charts.stacked_area(
        "chart-statuses",
        "Users by status over time",
        f"Users in each status on each day from {first} to {last}, stacked."
        if labels
        else "No day counted yet.",
        labels,
        status_series,
        empty="No day counted yet: the worker counts users every hour.",
    )
    runs = board.runs
    run_labels = [run.as_of.strftime("%Y-%m-%d %H:%M") for run in runs]
    levels_svg = charts.column_groups(
        "chart-levels",
        "Churn levels in the latest scoring runs",
        "Users at low, medium and high churn risk in each of the latest runs, oldest first.",
        run_labels,
        [
            Series(level.capitalize(), [run.counts[level] for run in runs], LEVEL_COLORS[level])
            for level in LEVEL_COLORS
        ],
        empty="No scoring run yet.",
    )
    at_risk_svg = charts.horizontal_bars(
        "chart-at-risk",
        "Users most at risk",
        "The users of the latest run most likely to churn, with their probability.",
        [
            Bar(
                label=user.name,
                value=user.probability * 100,
                color=LEVEL_COLORS.get(user.level, LEVEL_COLORS["high"]),
                text=f"{user.probability:.0%}",
                href=f"/console/users/{user.user_id}",
            )
            for user in board.at_risk
        ],
        maximum=100,
        empty="Nobody active in your reach was scored in the latest run.",
    )
    latest = runs[-1] if runs else None
    previous = runs[-2] if len(runs) > 1 else None
    return {
        "statuses_svg": statuses_svg,
        "levels_svg": levels_svg,
        "at_risk_svg": at_risk_svg,
        "status_rows": [
            (label, {s: history.series[s][i] for s in dashboard.SHOWN_STATUSES})
            for i, label in enumerate(labels)
        ][-14:],
        "status_names": {s: UserStatus(s).label for s in dashboard.SHOWN_STATUSES},
        "run_labels": run_labels,
        "latest": latest,
        "level_changes": {
            level: latest.counts[level] - previous.counts[level]
            for level in LEVEL_COLORS
            if latest and previous
        },
    }


@router.get("/dashboard", response_class=HTMLResponse)
async def dashboard_page(request: Request, db: DbSession, auth: ConsoleAuth) -> Response:
    """The dashboard, within the signed-in admin's reach."""
    board = dashboard.dashboard(db, actor=auth.actor)
    return render(
        request,
        "console/dashboard.html",
        auth,
        db,
        board=board,
        nav="dashboard",
        **figures(board),
    )
