"""The console's Users list sorted by churn risk from its "Churn risk" column header."""

from __future__ import annotations

import html

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests import factories
from userdesk.organizations.models import Organization


def test_the_churn_risk_header_sorts_most_likely_first_then_reverses(
    client: TestClient, db: Session, org: Organization
) -> None:
    admin = factories.make_admin(db, org, first_name="Ada", last_name="Admin")
    for name, probability, level in (
        ("Low", 0.02, "low"),
        ("High", 0.91, "high"),
        ("Medium", 0.44, "medium"),
    ):
        user = factories.make_user(db, org, first_name=name, last_name="Risk")
        user.churn_probability, user.churn_level = probability, level
    db.flush()
    factories.login(client, admin.email)
    page = client.get("/console/users").text
    header = page.split('data-testid="sort-churn"', 1)[0].rsplit("<a", 1)[1]
    assert "sort=-churn" in html.unescape(header)  # the first click: most likely first
    riskiest = client.get("/console/users", params={"sort": "-churn"}).text
    rows = riskiest.split('id="users-rows"', 1)[1]
    order = [rows.index(f"{name} Risk") for name in ("High", "Medium", "Low")]
    assert order == sorted(order)
    assert rows.index("Low Risk") < rows.index("Ada Admin")  # not scored: last
    header = riskiest.split('data-testid="sort-churn"', 1)[0].rsplit("<a", 1)[1]
    assert "sort=churn" in html.unescape(header)  # then the reverse
    assert "Churn risk ↓" in riskiest
    safest = client.get("/console/users", params={"sort": "churn"}).text
    rows = safest.split('id="users-rows"', 1)[1]
    order = [rows.index(f"{name} Risk") for name in ("Low", "Medium", "High")]
    assert order == sorted(order)
    assert rows.index("Ada Admin") < rows.index("Low Risk")
