"""Support agents are Online or Away by business hours: the organization's or their own."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests import factories
from userdesk.availability.rules import DAYS, hours_problems, parse_hours
from userdesk.organizations.models import Organization

PARIS = {
    "time_zone": "Europe/Paris",
    "weekly": {"mon": [["09:00", "12:30"], ["13:30", "18:00"]], "sat": [["10:00", "24:00"]]},
    "holidays": ["2026-12-28"],
}
ALWAYS = {"time_zone": "UTC", "weekly": {d: [["00:00", "24:00"]] for d in DAYS}}
NEVER = {"time_zone": "UTC", "weekly": {}}


def test_opening_follows_the_local_time_the_breaks_and_the_holidays() -> None:
    hours = parse_hours(PARIS)
    monday = datetime(2026, 11, 23, tzinfo=UTC)  # Paris is UTC+1 in November
    assert hours.is_open(monday.replace(hour=8))  # 09:00 in Paris
    assert not hours.is_open(monday.replace(hour=7, minute=59))
    assert not hours.is_open(monday.replace(hour=11, minute=45))  # the lunch break
    assert not hours.is_open(monday.replace(hour=17))  # 18:00: closed
    assert hours.is_open(datetime(2026, 11, 28, 22, 59, tzinfo=UTC))  # Saturday to midnight
    assert not hours.is_open(datetime(2026, 11, 24, 10, tzinfo=UTC))  # Tuesday: closed
    assert not hours.is_open(datetime(2026, 12, 28, 10, tzinfo=UTC))  # a Monday holiday
    assert parse_hours(hours.to_json()) == hours


def test_bad_hours_are_refused_naming_the_field() -> None:
    problems = hours_problems(
        {
            "time_zone": "Mars/Olympus",
            "weekly": {"mon": [["18:00", "09:00"]], "funday": [], "tue": [["9h", "17h"]]},
            "holidays": ["25/12/2026"],
        }
    )
    assert set(problems) == {"time_zone", "weekly.mon", "weekly.funday", "weekly.tue", "holidays"}
    assert "Mars/Olympus" in problems["time_zone"]
    assert hours_problems(PARIS) == {}


def test_agents_show_online_or_away_in_the_api_and_the_console(
    client: TestClient, db: Session, org: Organization
) -> None:
    admin = factories.make_admin(db, org)
    key = factories.make_api_key(db, org)
    headers = {"Authorization": f"Bearer {key}"}
    agent = factories.make_user(db, org, roles=("Agent",), first_name="Agnes")
    member = factories.make_user(db, org)

    bad = client.put("/api/v1/business-hours", json={"time_zone": "Nowhere"}, headers=headers)
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["field"] == "time_zone"
    assert client.put("/api/v1/business-hours", json=ALWAYS, headers=headers).status_code == 200
    assert client.get(f"/api/v1/users/{agent.id}", headers=headers).json()["availability"] == (
        "online"
    )
    assert client.get(f"/api/v1/users/{member.id}", headers=headers).json()["availability"] is None

    own = client.put(f"/api/v1/users/{agent.id}/business-hours", json=NEVER, headers=headers)
    assert own.status_code == 200
    assert client.get(f"/api/v1/users/{agent.id}", headers=headers).json()["availability"] == (
        "away"
    )
    not_agent = client.put(f"/api/v1/users/{member.id}/business-hours", json=NEVER, headers=headers)
    assert not_agent.status_code == 409
    back = client.put(f"/api/v1/users/{agent.id}/business-hours", json=None, headers=headers)
    assert back.status_code == 200

    factories.login(client, admin.email)
    listed = client.get("/console/users", params={"q": "Agnes"}).text
    assert 'data-testid="presence">Online<' in listed
    page = client.get(f"/console/users/{agent.id}").text
    assert 'data-testid="presence">Online<' in page
