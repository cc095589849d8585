"""The dashboard as a new admin first sees it: every status in the legend, churn cards
that agree with each other before and after the first scoring run, and "Most at risk"
listing only the active users retention is for."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests import factories
from userdesk.access import service as access
from userdesk.churn.models import ChurnRun, ChurnScore
from userdesk.dashboard import service as dashboard
from userdesk.organizations.models import Organization
from userdesk.users.models import User
from userdesk.users.rules import UserStatus


def _run(db: Session, org: Organization, scores: list[tuple[User, float]]) -> ChurnRun:
    now = datetime.now(UTC)
    run = ChurnRun(
        organization_id=org.id,
        as_of=now - timedelta(minutes=5),
        model="test",
        users=len(scores),
        finished_at=now,
    )
    db.add(run)
    db.flush()
    for user, probability in scores:
        db.add(
            ChurnScore(
                organization_id=org.id,
                run_id=run.id,
                user_id=user.id,
                probability=probability,
                level="high" if probability >= 0.5 else "low",
                reasons=[f"No sign-in for {user.first_name} days"],
            )
        )
    db.flush()
    return run


def test_the_legend_lists_every_status_deleted_included(
    client: TestClient, db: Session, org: Organization
) -> None:
    admin = factories.make_admin(db, org)
    factories.make_user(db, org, status="deleted")
    dashboard.record_day(db, org.id, datetime.now(UTC).date())
    factories.login(client, admin.email)
    html = client.get("/console/dashboard").text
    legend = html.split('class="list-inline mt-2 mb-0 small"', 1)[1].split("</ul>", 1)[0]
    for status in UserStatus:
        assert f"ud-status-{status.value}" in legend
        assert status.label in legend
    assert "Deleted" in legend


def test_before_any_run_neither_churn_card_is_filled(
    client: TestClient, db: Session, org: Organization
) -> None:
    admin = factories.make_admin(db, org)
    factories.login(client, admin.email)
    html = client.get("/console/dashboard").text
    assert html.count("No scoring run yet") == 2
    assert 'data-testid="levels-empty"' in html
    assert 'data-testid="at-risk-empty"' in html
    assert "userdesk churn score" in html
    assert 'data-testid="at-risk-table"' not in html
    assert 'data-testid="levels-table"' not in html


def test_a_run_not_counted_yet_fills_neither_card(
    client: TestClient, db: Session, org: Organization
) -> None:
    """Scores exist, levels are not counted: both cards say so, none shows half."""
    admin = factories.make_admin(db, org)
    risky = factories.make_user(db, org, first_name="Rhea")
    _run(db, org, [(risky, 0.9)])
    factories.login(client, admin.email)
    html = client.get("/console/dashboard").text
    assert html.count("The first scoring run is being counted") == 2
    assert "Rhea" not in html
    assert "No scoring run yet" not in html
    dashboard.store_runs(db, org.id, dashboard.measure_runs(db, org.id))
    html = client.get("/console/dashboard").text
    assert 'data-testid="levels-table"' in html
    assert 'data-testid="at-risk-table"' in html
    assert "Rhea" in html
    assert "No sign-in for Rhea days" in html


def test_most_at_risk_lists_only_active_users(db: Session, org: Organization) -> None:
    admin = access.actor_for_user(db, factories.make_admin(db, org))
    people = {
        status: factories.make_user(db, org, first_name=status.title(), status=status)
        for status in ("pending", "disabled", "banned", "trashed", "deleted")
    }
    active = factories.make_user(db, org, first_name="Ada")
    calm = factories.make_user(db, org, first_name="Cal")
    _run(db, org, [*((u, 0.99) for u in people.values()), (active, 0.6), (calm, 0.1)])
    dashboard.store_runs(db, org.id, dashboard.measure_runs(db, org.id))
    board = dashboard.dashboard(db, actor=admin)
    assert [u.user_id for u in board.at_risk] == [active.id, calm.id]
    assert board.at_risk[0].reasons == ["No sign-in for Ada days"]
    assert board.scored
    assert not board.levels_pending
