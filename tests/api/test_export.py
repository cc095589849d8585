"""The export is exactly the view: every matching user, in the view's order, as RFC 4180 CSV."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests import factories
from userdesk.db.base import utcnow
from userdesk.exports import service as exports
from userdesk.organizations.models import Organization
from userdesk.users.service import SORTS


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_the_export_holds_every_page_of_the_view_in_its_order(
    client: TestClient, db: Session, org: Organization, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(exports, "BATCH", 3)
    team = factories.make_team(db, org, "Sales")
    group = factories.make_group(db, org, "VIP")
    for n in range(8):
        factories.make_user(
            db,
            org,
            team=team if n % 2 else None,
            groups=[group] if n % 3 == 0 else [],
            roles=("Agent",) if n == 1 else ("Member",),
        )
    factories.make_user(db, org, status="banned")
    key = factories.make_api_key(db, org)
    params = {"q": "status:active", "sort": "-email"}
    response = client.get("/api/v1/users/export", params=params, headers=bearer(key))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    assert response.text.startswith("first_name,last_name,email,status,")
    assert "\r\n" in response.text
    exported = rows(response.text)
    listed = client.get(
        "/api/v1/users", params={**params, "limit": 500}, headers=bearer(key)
    ).json()["items"]
    assert [r["email"] for r in exported] == [u["email"] for u in listed]
    agent_row = next(r for r in exported if r["roles"] == "Agent")
    assert agent_row["permissions"] == "users.activity;users.read"
    assert {r["team"] for r in exported} == {"", "Sales"}
    assert any(r["groups"] == "VIP" for r in exported)


@pytest.mark.parametrize("sort", list(SORTS))
def test_the_export_is_in_the_order_of_the_list_for_every_sort(
    client: TestClient, db: Session, org: Organization, sort: str
) -> None:
    now = utcnow()
    for n in range(7):
        factories.make_user(
            db,
            org,
            first_name=("Ann", "Bob", "Ann")[n % 3],  # equal names, told apart by id
            last_seen_at=None if n % 2 else now - timedelta(days=n),  # NULLs amid values
        )
    key = factories.make_api_key(db, org)
    exported = rows(
        client.get("/api/v1/users/export", params={"sort": sort}, headers=bearer(key)).text
    )
    listed = client.get(
        "/api/v1/users", params={"sort": sort, "limit": 500}, headers=bearer(key)
    ).json()["items"]
    assert [r["email"] for r in exported] == [u["email"] for u in listed]
    seen = {u["email"]: u["last_seen_at"] for u in listed}
    assert any(seen.values())
    assert not all(seen.values())
    for row in exported:
        if seen[row["email"]]:
            assert row["last_seen_at"].endswith("Z")
            assert datetime.fromisoformat(row["last_seen_at"]) == datetime.fromisoformat(
                seen[row["email"]]
            ).replace(microsecond=0)
        else:
            assert row["last_seen_at"] == ""


def test_cells_a_spreadsheet_would_run_are_defused_and_quotes_are_kept(
    client: TestClient, db: Session, org: Organization
) -> None:
    for first in ("=SUM(A1)", "+1", "-2", "@cmd", 'Ann "the, great"'):
        factories.make_user(db, org, first_name=first, last_name="X")
    key = factories.make_api_key(db, org)
    exported = rows(client.get("/api/v1/users/export", headers=bearer(key)).text)
    names = {r["first_name"] for r in exported}
    assert {"'=SUM(A1)", "'+1", "'-2", "'@cmd", 'Ann "the, great"'} <= names


def test_an_export_is_refused_before_the_first_byte(
    client: TestClient, db: Session, org: Organization
) -> None:
    agent = factories.make_api_key(db, org, "Agent")
    assert client.get("/api/v1/users/export", headers=bearer(agent)).status_code == 403
    key = factories.make_api_key(db, org)
    bad = client.get("/api/v1/users/export", params={"q": "colour:red"}, headers=bearer(key))
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["field"] == "q"


def test_a_team_administrator_exports_its_team_only(
    client: TestClient, db: Session, org: Organization
) -> None:
    team = factories.make_team(db, org)
    inside = factories.make_user(db, org, team=team)
    factories.make_user(db, org)
    key = factories.make_api_key(db, org, "Team Administrator", team=team)
    exported = rows(client.get("/api/v1/users/export", headers=bearer(key)).text)
    assert [r["email"] for r in exported] == [inside.email]


def test_the_console_button_downloads_the_current_view(
    client: TestClient, db: Session, org: Organization
) -> None:
    admin = factories.make_admin(db, org)
    factories.make_user(db, org, first_name="Zed", status="pending")
    factories.login(client, admin.email)
    page = client.get("/console/users", params={"q": "status:pending"}).text
    link = page.split('data-testid="export"', 1)[0].rsplit('href="', 1)[1].split('"', 1)[0]
    exported = rows(client.get(link.replace("&amp;", "&")).text)
    assert [r["first_name"] for r in exported] == ["Zed"]


def test_each_cell_is_written_as_the_python_rules_say(
    client: TestClient, db: Session, org: Organization
) -> None:
    """The database writes most cells: each must be what `exports.quoted` and the UTC
    time to the second make of the user's fields, on every backend."""
    team = factories.make_team(db, org, 'Support "EU"')
    groups = [factories.make_group(db, org, name) for name in ("Zeta", "Alpha")]
    person = factories.make_user(
        db,
        org,
        email="-dash@example.com",
        first_name="\tTab",
        last_name='\rCR "quoted", too',
        team=team,
        groups=groups,
        roles=("Member", "Agent"),
        last_seen_at=datetime(2026, 11, 23, 9, 30, 59, 999_999, tzinfo=UTC),
    )
    person.created_at = datetime(2025, 1, 2, 3, 4, 5, 600_000, tzinfo=UTC)
    person.churn_level, person.churn_probability = "high", 0.873
    factories.make_user(db, org, first_name="Zed", roles=())
    db.flush()
    key = factories.make_api_key(db, org)
    text = client.get("/api/v1/users/export", params={"sort": "email"}, headers=bearer(key)).text
    lines = text.split("\r\n")
    assert lines[1] == ",".join(
        [
            exports.quoted("\tTab"),
            exports.quoted('\rCR "quoted", too'),
            exports.quoted("-dash@example.com"),
            "active",
            "yes",
            "no",
            exports.quoted('Support "EU"'),
            exports.quoted("Alpha;Zeta"),
            exports.quoted("Agent;Member"),
            "users.activity;users.read",
            "2025-01-02T03:04:05Z",
            "",
            "2026-11-23T09:30:59Z",
            "high",
            "0.873",
        ]
    )
    assert lines[1].startswith('"\'\tTab","\'\rCR ""quoted"", too","\'-dash@example.com"')
    zed = next(line for line in lines if '"Zed"' in line)
    assert zed.split(",")[6:10] == ["", "", "", ""]
