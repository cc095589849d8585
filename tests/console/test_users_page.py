from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests import factories
from userdesk.organizations.models import Organization


def test_the_users_list_shows_each_person_with_status_team_roles_and_verification(
    client: TestClient, db: Session, org: Organization
) -> None:
    team = factories.make_team(db, org, "Support EU")
    admin = factories.make_admin(db, org, first_name="Ada", last_name="Admin")
    factories.make_user(
        db, org, first_name="Ann", last_name="Lee", status="pending", team=team, roles=("Agent",)
    )
    factories.login(client, admin.email)
    page = client.get("/console/users")
    assert page.status_code == 200
    text = page.text
    assert 'name="csrf-token"' in text
    assert "Ann Lee" in text
    assert "Ada Admin" in text
    assert "Not Activated" in text
    assert "Support EU" in text
    assert "Agent" in text
    assert "True" in text
    assert "No users to display" not in text


def test_a_team_administrator_sees_only_the_users_of_their_team(
    client: TestClient, db: Session, org: Organization
) -> None:
    team = factories.make_team(db, org)
    team_admin = factories.make_user(db, org, roles=("Team Administrator",), team=team)
    factories.make_user(db, org, first_name="Hidden", last_name="Person")
    factories.make_user(db, org, team=team, first_name="Visible", last_name="Person")
    factories.login(client, team_admin.email)
    page = client.get("/console/users").text
    assert "Visible Person" in page
    assert team_admin.name in page
    assert "Hidden Person" not in page


def test_load_more_returns_the_next_rows_as_a_partial(
    client: TestClient, db: Session, org: Organization
) -> None:
    admin = factories.make_admin(db, org)
    for _ in range(60):
        factories.make_user(db, org)
    factories.login(client, admin.email)
    first = client.get("/console/users").text
    assert first.count("<tr data-user-id") == 50
    row = first.split('id="load-more"', 1)[1]
    link = row.split('hx-get="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    more = client.get(link, headers={"HX-Request": "true", "HX-Target": "load-more"}).text
    assert "<html" not in more
    assert more.count("<tr data-user-id") == 11
    assert "Load more" not in more


def test_empty_list_says_so(client: TestClient, db: Session, org: Organization) -> None:
    team = factories.make_team(db, org)
    admin = factories.make_user(db, org, roles=("Team Administrator",), team=team)
    factories.make_user(db, org)
    factories.login(client, admin.email)
    admin.team_id = None  # a team admin without a team covers nobody
    db.flush()
    assert "No users to display" in client.get("/console/users").text


def test_a_users_page_shows_their_details(
    client: TestClient, db: Session, org: Organization
) -> None:
    admin = factories.make_admin(db, org)
    group = factories.make_group(db, org, "Beta testers")
    ann = factories.make_user(db, org, first_name="Ann", last_name="Lee", groups=[group])
    factories.login(client, admin.email)
    page = client.get(f"/console/users/{ann.id}")
    assert page.status_code == 200
    assert "Ann Lee" in page.text
    assert "Beta testers" in page.text
    assert client.get("/console/users/999999999").status_code == 404


def test_settings_and_audit_pages_show_roles_and_events(
    client: TestClient, db: Session, org: Organization
) -> None:
    admin = factories.make_admin(db, org)
    factories.make_api_key(db, org, "Agent")
    factories.login(client, admin.email)
    settings = client.get("/console/settings").text
    for name in ("Administrator", "Team Administrator", "Agent", "Member", "users.impersonate"):
        assert name in settings
    assert "api_key.created" in client.get("/console/audit").text
