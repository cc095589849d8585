from urllib.parse import parse_qs, urlsplit

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests import factories
from userdesk.organizations.models import Organization


def test_the_query_in_the_url_filters_the_list_and_shows_chips_and_counts(
    client: TestClient, db: Session, org: Organization
) -> None:
    admin = factories.make_admin(db, org, first_name="Ada", last_name="Admin")
    team = factories.make_team(db, org, "Support EU")
    factories.make_user(db, org, first_name="Ann", last_name="Lee", team=team)
    factories.make_user(db, org, first_name="Anna", last_name="Banned", status="banned")
    factories.make_user(db, org, first_name="Bob", last_name="Other")
    factories.login(client, admin.email)
    page = client.get("/console/users", params={"q": 'ann team:"Support EU"'}).text
    assert "Ann Lee" in page
    assert "Anna Banned" not in page
    assert "Bob Other" not in page
    assert "team:&#34;Support EU&#34;" in page or "team:&quot;Support EU&quot;" in page
    tabs = page.split('data-testid="status-tabs"', 1)[1].split("</ul>", 1)[0]
    assert "All" in tabs
    assert "Not Activated" in tabs
    assert "Without Login" in tabs


def test_a_tab_link_keeps_the_query_and_sets_the_status(
    client: TestClient, db: Session, org: Organization
) -> None:
    admin = factories.make_admin(db, org)
    factories.make_user(db, org, first_name="Anna", last_name="Banned", status="banned")
    factories.make_user(db, org, first_name="Anne", last_name="Active")
    factories.login(client, admin.email)
    page = client.get("/console/users", params={"q": "ann"}).text
    links = [part.split('"', 1)[0] for part in page.split('href="')[1:]]
    banned = next(link for link in links if "status%3Abanned" in link)
    assert parse_qs(urlsplit(banned.replace("&amp;", "&")).query)["q"] == ["ann status:banned"]
    result = client.get(banned.replace("&amp;", "&")).text
    assert "Anna Banned" in result
    assert "Anne Active" not in result


def test_a_bad_query_shows_the_problem_and_keeps_the_text(
    client: TestClient, db: Session, org: Organization
) -> None:
    admin = factories.make_admin(db, org)
    factories.login(client, admin.email)
    page = client.get("/console/users", params={"q": "ann colour:red"})
    assert page.status_code == 400
    assert "Unknown filter &#39;colour:red&#39;" in page.text
    assert 'value="ann colour:red"' in page.text
    partial = client.get(
        "/console/users",
        params={"q": "ann colour:red"},
        headers={"HX-Request": "true", "HX-Target": "users-results"},
    )
    assert partial.status_code == 200
    assert "<html" not in partial.text
    assert 'data-testid="query-error"' in partial.text


def test_saving_a_segment_puts_it_in_the_sidebar_and_editing_it_changes_it(
    client: TestClient, db: Session, org: Organization
) -> None:
    admin = factories.make_admin(db, org)
    factories.make_user(db, org, first_name="Zed", last_name="Banned", status="banned")
    csrf = factories.login(client, admin.email)
    saved = client.post(
        "/console/segments",
        data={"name": "Troublemakers", "q": "status:banned", "sort": "-seen", "csrf_token": csrf},
    )
    assert saved.status_code == 303
    shown = client.get(saved.headers["location"]).text
    assert 'data-testid="sidebar-segment"' in shown
    assert "Troublemakers" in shown
    assert "Zed Banned" in shown
    segment_id = parse_qs(urlsplit(saved.headers["location"]).query)["segment"][0]
    bad = client.post(
        f"/console/segments/{segment_id}",
        data={"name": "", "q": "status:nope", "sort": "name", "csrf_token": csrf},
    )
    assert bad.status_code == 400
    assert "is required" in bad.text
    assert "&#39;nope&#39; is not a status" in bad.text
    good = client.post(
        f"/console/segments/{segment_id}",
        data={"name": "Disabled", "q": "status:disabled", "sort": "name", "csrf_token": csrf},
    )
    assert good.status_code == 303
    assert "Zed Banned" not in client.get(good.headers["location"]).text
    gone = client.post(f"/console/segments/{segment_id}/delete", data={"csrf_token": csrf})
    assert gone.status_code == 303
    assert 'data-testid="sidebar-segment"' not in client.get("/console/users").text


def test_saving_a_segment_needs_the_csrf_token(
    client: TestClient, db: Session, org: Organization
) -> None:
    admin = factories.make_admin(db, org)
    factories.login(client, admin.email)
    refused = client.post("/console/segments", data={"name": "x", "q": "status:active"})
    assert refused.status_code == 403
