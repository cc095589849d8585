"""The Users page shows its rows at once and fetches the tab figures after them."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests import factories
from userdesk.organizations.models import Organization


def _badges(fragment: str) -> list[str]:
    return [
        part.split(">", 1)[1].split("<", 1)[0]
        for part in fragment.split('data-testid="tab-count"')[1:]
    ]


def test_the_page_shows_rows_without_counting_and_loads_the_figures_after(
    client: TestClient, db: Session, org: Organization
) -> None:
    admin = factories.make_admin(db, org, first_name="Ada")
    factories.make_user(db, org, first_name="Ann", last_name="Lee")
    factories.make_user(db, org, first_name="Anna", last_name="Banned", status="banned")
    factories.login(client, admin.email)
    page = client.get("/console/users", params={"q": "ann"}).text
    assert "Ann Lee" in page
    assert 'data-testid="tab-count"' not in page
    assert 'hx-get="/console/users/counts?q=ann&amp;sort=name"' in page
    assert 'hx-trigger="load"' in page
    results = client.get(
        "/console/users",
        params={"q": "ann status:banned"},
        headers={"HX-Request": "true", "HX-Target": "users-results"},
    ).text
    assert "/console/users/counts?q=ann+status%3Abanned" in results  # after a filter change
    fragment = client.get("/console/users/counts", params={"q": "ann"})
    assert fragment.status_code == 200
    # All, Not Activated, Active, Disabled, Banned, Trashed, Deleted, Without Login
    assert _badges(fragment.text) == ["2", "0", "1", "0", "1", "0", "0", "2"]
    assert fragment.text.count('hx-swap-oob="true"') == 9  # eight tabs and the bulk button
    assert 'id="tab-count-1"' in fragment.text
    assert 'id="bulk-all-count" hx-swap-oob="true"> 2</span>' in fragment.text
    assert "data-estimated" not in fragment.text


def test_a_team_administrator_sees_its_team_counted_only(
    client: TestClient, db: Session, org: Organization
) -> None:
    team = factories.make_team(db, org, "Support EU")
    lead = factories.make_user(db, org, roles=("Team Administrator",), team=team)
    factories.make_user(db, org, first_name="Ann", team=team)
    factories.make_user(db, org, first_name="Anne", status="banned")
    factories.login(client, lead.email)
    fragment = client.get("/console/users/counts", params={"q": "ann"}).text
    assert _badges(fragment)[0] == "1"
    assert _badges(fragment)[4] == "0"


def test_a_bad_query_in_the_counts_answers_400_naming_q(
    client: TestClient, db: Session, org: Organization
) -> None:
    admin = factories.make_admin(db, org)
    factories.login(client, admin.email)
    response = client.get("/console/users/counts", params={"q": "ann colour:red"})
    assert response.status_code == 400
    assert "q: Unknown filter" in response.text
    assert 'data-testid="tab-count"' not in response.text
    page = client.get("/console/users", params={"q": "ann colour:red"}).text
    assert 'data-testid="counts-loader"' not in page  # the error is shown, nothing to count


def test_the_counts_need_a_signed_in_reader(client: TestClient) -> None:
    response = client.get("/console/users/counts", follow_redirects=False)
    assert response.status_code in (303, 401)


def test_the_counts_are_refused_to_a_member_and_count_everyone_for_an_agent(
    client: TestClient, db: Session, org: Organization
) -> None:
    team = factories.make_team(db, org, "Support EU")
    factories.make_user(db, org, first_name="Ann", team=team)
    factories.make_user(db, org, first_name="Anne")
    member = factories.make_user(db, org, first_name="Mo", roles=("Member",))
    agent = factories.make_user(db, org, first_name="Al", roles=("Agent",))
    factories.login(client, member.email)
    refused = client.get("/console/users/counts", params={"q": "ann"}, follow_redirects=False)
    assert refused.status_code == 403
    assert 'data-testid="tab-count"' not in refused.text
    client.cookies.clear()
    factories.login(client, agent.email)
    fragment = client.get("/console/users/counts", params={"q": "ann"}).text
    assert _badges(fragment)[0] == "2"  # org-wide reach: both teams and none


def test_a_nul_in_the_counts_query_is_a_400_naming_q(
    client: TestClient, db: Session, org: Organization
) -> None:
    factories.login(client, factories.make_admin(db, org).email)
    response = client.get("/console/users/counts", params={"q": "ann\x00"})
    assert response.status_code == 400
    assert "q" in response.text
