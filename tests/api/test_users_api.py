from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests import factories
from userdesk.organizations.models import Organization


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_an_anonymous_api_request_gets_a_401_problem(client: TestClient) -> None:
    response = client.get("/api/v1/users")
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == 401
    assert body["code"] == "not_authenticated"


def test_an_unknown_api_key_gets_a_401_problem(client: TestClient) -> None:
    response = client.get("/api/v1/users", headers=bearer("ud_not-a-key"))
    assert response.status_code == 401
    assert response.json()["code"] == "auth.invalid_api_key"


def test_paging_by_cursor_shows_every_user_once_in_name_order(
    client: TestClient, db: Session, org: Organization
) -> None:
    made = [factories.make_user(db, org) for _ in range(23)]
    key = factories.make_api_key(db, org)
    seen: list[dict[str, object]] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"limit": 5}
        if cursor:
            params["cursor"] = cursor
        page = client.get("/api/v1/users", params=params, headers=bearer(key)).json()
        seen.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(u["id"] for u in seen) == sorted(str(u.id) for u in made)
    names = [(u["first_name"], u["last_name"], int(u["id"])) for u in seen]
    assert names == sorted(names)


def test_descending_sort_reverses_the_order(
    client: TestClient, db: Session, org: Organization
) -> None:
    for _ in range(6):
        factories.make_user(db, org)
    key = factories.make_api_key(db, org)
    up = client.get("/api/v1/users", params={"sort": "email"}, headers=bearer(key)).json()
    down = client.get("/api/v1/users", params={"sort": "-email"}, headers=bearer(key)).json()
    assert [u["id"] for u in up["items"]] == [u["id"] for u in reversed(down["items"])]


def test_bad_paging_input_is_a_400_naming_the_field_and_value(
    client: TestClient, db: Session, org: Organization
) -> None:
    key = factories.make_api_key(db, org)
    cases = {"sort": {"sort": "shoe-size"}, "limit": {"limit": 0}, "cursor": {"cursor": "zzz"}}
    for field, params in cases.items():
        response = client.get("/api/v1/users", params=params, headers=bearer(key))
        assert response.status_code == 400, field
        errors = response.json()["errors"]
        assert errors[0]["field"] == field
        assert str(params[field]) in errors[0]["detail"]


def test_a_non_number_limit_is_a_400_naming_the_field(
    client: TestClient, db: Session, org: Organization
) -> None:
    key = factories.make_api_key(db, org)
    response = client.get("/api/v1/users", params={"limit": "many"}, headers=bearer(key))
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "limit"
    assert "many" in response.json()["errors"][0]["detail"]


def test_a_user_is_read_with_its_links_and_an_etag(
    client: TestClient, db: Session, org: Organization
) -> None:
    team = factories.make_team(db, org, "Support EU")
    group = factories.make_group(db, org, "VIP")
    user = factories.make_user(db, org, team=team, groups=[group], roles=("Agent",))
    key = factories.make_api_key(db, org)
    response = client.get(f"/api/v1/users/{user.id}", headers=bearer(key))
    assert response.status_code == 200
    assert response.headers["etag"] == f'W/"{user.version}"'
    body = response.json()
    assert body["id"] == str(user.id)
    assert body["team"]["name"] == "Support EU"
    assert [g["name"] for g in body["groups"]] == ["VIP"]
    assert [r["name"] for r in body["roles"]] == ["Agent"]
    assert body["status"] == "active"
    assert body["email_verified"] is True
    for field in ("validated", "created_at", "last_login_at", "last_seen_at", "banned_until"):
        assert field in body


def test_users_of_another_organization_do_not_exist(
    client: TestClient, db: Session, org: Organization
) -> None:
    other = factories.make_organization(db)
    stranger = factories.make_user(db, other)
    factories.make_user(db, org)
    key = factories.make_api_key(db, org)
    assert client.get(f"/api/v1/users/{stranger.id}", headers=bearer(key)).status_code == 404
    ids = [u["id"] for u in client.get("/api/v1/users", headers=bearer(key)).json()["items"]]
    assert str(stranger.id) not in ids


def test_a_team_scoped_key_sees_only_its_team(
    client: TestClient, db: Session, org: Organization
) -> None:
    mine, theirs = factories.make_team(db, org), factories.make_team(db, org)
    inside = factories.make_user(db, org, team=mine)
    outside = factories.make_user(db, org, team=theirs)
    loner = factories.make_user(db, org)
    key = factories.make_api_key(db, org, "Team Administrator", team=mine)
    ids = [u["id"] for u in client.get("/api/v1/users", headers=bearer(key)).json()["items"]]
    assert ids == [str(inside.id)]
    for hidden in (outside, loner):
        assert client.get(f"/api/v1/users/{hidden.id}", headers=bearer(key)).status_code == 404


def test_a_key_without_users_read_is_forbidden(
    client: TestClient, db: Session, org: Organization
) -> None:
    key = factories.make_api_key(db, org, "Member")
    response = client.get("/api/v1/users", headers=bearer(key))
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


def test_the_openapi_document_lists_the_users_operations(client: TestClient) -> None:
    spec = client.get("/api/v1/openapi.json").json()
    assert "/api/v1/users" in spec["paths"]
    assert "/api/v1/users/{user_id}" in spec["paths"]
    assert "/api/v1/segments" in spec["paths"]
    # The API's own paths, and SCIM's (described in the same document).
    assert all(path.startswith(("/api/v1/", "/scim/v2/")) for path in spec["paths"])
    listed = spec["paths"]["/api/v1/users"]["get"]["responses"]["200"]
    assert listed["content"]["application/json"]["schema"]["$ref"].endswith("UserPageRead")


def test_the_api_answers_match_the_documented_schemas(
    client: TestClient, db: Session, org: Organization
) -> None:
    from userdesk.users.schemas import UserPageRead, UserRead

    team = factories.make_team(db, org)
    user = factories.make_user(db, org, team=team, groups=[factories.make_group(db, org)])
    key = factories.make_api_key(db, org)
    page = client.get("/api/v1/users", headers=bearer(key)).json()
    assert UserPageRead.model_validate(page).items[0].id == str(user.id)
    single = client.get(f"/api/v1/users/{user.id}", headers=bearer(key)).json()
    assert UserRead.model_validate(single).team is not None
    assert set(single) == set(UserRead.model_fields)


def test_unknown_api_paths_are_problems_and_unknown_pages_are_pages(client: TestClient) -> None:
    api = client.get("/api/v1/nothing-here")
    assert api.status_code == 404
    assert api.headers["content-type"] == "application/problem+json"
    page = client.get("/nothing-here")
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ok"}
