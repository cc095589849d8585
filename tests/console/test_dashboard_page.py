"""The console dashboard: drawn for an admin with their figures, in the navigation, and
refused to someone without console access; the JSON twin gives the same figures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests import factories
from userdesk.access.models import Team
from userdesk.churn.models import ChurnRun, ChurnScore
from userdesk.dashboard import service as dashboard
from userdesk.organizations.models import Organization


def _scored(db: Session, org: Organization) -> tuple[int, int]:
    mine = factories.make_team(db, org, "Mine")
    risky = factories.make_user(db, org, first_name="Risky", last_name="Rita", team=mine)
    calm = factories.make_user(db, org, first_name="Calm", last_name="Carl")
    now = datetime.now(UTC)
    run = ChurnRun(
        organization_id=org.id, as_of=now - timedelta(hours=1), model="t", users=2, finished_at=now
    )
    db.add(run)
    db.flush()
    for user, probability, level in ((risky, 0.83, "high"), (calm, 0.05, "low")):
        db.add(
            ChurnScore(
                organization_id=org.id,
                run_id=run.id,
                user_id=user.id,
                probability=probability,
                level=level,
                reasons=["No sign-in for 24 days"] if level == "high" else [],
            )
        )
    db.flush()
    dashboard.record_day(db, org.id, now.date())
    return risky.id, mine.id


def test_an_admin_sees_the_three_charts_and_their_figures(
    client: TestClient, db: Session, org: Organization
) -> None:
    risky_id, _ = _scored(db, org)
    admin = factories.make_admin(db, org)
    factories.login(client, admin.email)

    page = client.get("/console/dashboard")

    assert page.status_code == 200
    html = page.text
    assert 'href="/console/dashboard"' in html  # in the navigation
    for chart in ("chart-statuses", "chart-levels", "chart-at-risk"):
        assert f'<svg xmlns="http://www.w3.org/2000/svg" class="ud-chart" id="{chart}"' in html
    assert '<title id="chart-statuses-title">Users by status over time</title>' in html
    assert 'data-testid="statuses-table"' in html
    assert f'<a href="/console/users/{risky_id}">' in html  # a bar and a row link there
    assert "Risky Rita" in html
    assert "83%" in html
    assert "No sign-in for 24 days" in html
    assert "cdn" not in html.lower()


def test_a_team_admin_sees_only_their_team_at_risk(
    client: TestClient, db: Session, org: Organization
) -> None:
    _, team_id = _scored(db, org)
    team_admin = factories.make_user(
        db, org, roles=("Team Administrator",), team=db.get_one(Team, team_id)
    )
    factories.login(client, team_admin.email)
    html = client.get("/console/dashboard").text
    assert "Risky Rita" in html
    assert "Calm Carl" not in html
    outsider = factories.make_user(
        db, org, roles=("Team Administrator",), team=factories.make_team(db, org, "Other")
    )
    client.cookies.clear()
    factories.login(client, outsider.email)
    html = client.get("/console/dashboard").text
    assert "Risky Rita" not in html
    assert "Nobody active in your reach was scored in the latest run." in html


def test_someone_without_console_access_is_refused(
    client: TestClient, db: Session, org: Organization
) -> None:
    member = factories.make_user(db, org)
    factories.login(client, member.email)
    assert client.get("/console/dashboard").status_code == 403
    assert client.get("/api/v1/dashboard").status_code == 403


def test_the_api_gives_the_same_figures(client: TestClient, db: Session, org: Organization) -> None:
    risky_id, _ = _scored(db, org)
    key = factories.make_api_key(db, org)
    body = client.get("/api/v1/dashboard", headers={"Authorization": f"Bearer {key}"}).json()
    assert body["statuses"][-1]["users"]["active"] == 2
    assert body["runs"][-1]["levels"] == {"low": 1, "medium": 0, "high": 1}
    assert body["at_risk"][0]["user_id"] == str(risky_id)
    assert body["at_risk"][0]["probability"] == 0.83
