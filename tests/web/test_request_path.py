"""The request path does its lookups once per request, and none of them outlives it: a
change to a key, a role or a user takes effect at the very next request."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from tests import factories
from userdesk.access.models import RolePermission
from userdesk.auth.models import ApiKey
from userdesk.db.base import utcnow
from userdesk.organizations.models import Organization


def _listed(client: TestClient, key: str) -> set[str]:
    response = client.get("/api/v1/users?limit=100", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200, response.text
    return {item["email"] for item in response.json()["items"]}


def test_a_key_given_a_narrower_role_reaches_fewer_users_at_the_next_request(
    client: TestClient, db: Session, org: Organization
) -> None:
    """The key's role and its reach are read with the key, at each request: the list
    built for an organization-wide key is not the one a team-scoped key gets."""
    team = factories.make_team(db, org)
    inside = factories.make_user(db, org, team=team)
    outside = factories.make_user(db, org)
    key = factories.make_api_key(db, org)
    assert {inside.email, outside.email} <= _listed(client, key)

    narrower = factories.role(db, org, "Team Administrator")
    db.execute(update(ApiKey).values(role_id=narrower.id, team_id=team.id))
    db.flush()

    assert _listed(client, key) == {inside.email}


def test_a_permission_taken_from_a_keys_role_is_refused_at_the_next_request(
    client: TestClient, db: Session, org: Organization
) -> None:
    key = factories.make_api_key(db, org, role_name="Agent")
    headers = {"Authorization": f"Bearer {key}"}
    assert client.get("/api/v1/users", headers=headers).status_code == 200

    agent = factories.role(db, org, "Agent")
    db.execute(
        delete(RolePermission).where(
            RolePermission.role_id == agent.id, RolePermission.permission == "users.read"
        )
    )
    db.flush()

    response = client.get("/api/v1/users", headers=headers)
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


def test_a_revoked_key_is_refused_at_the_next_request(
    client: TestClient, db: Session, org: Organization
) -> None:
    key = factories.make_api_key(db, org)
    headers = {"Authorization": f"Bearer {key}"}
    assert client.get("/api/v1/users", headers=headers).status_code == 200

    db.execute(update(ApiKey).values(revoked_at=utcnow()))
    db.flush()

    response = client.get("/api/v1/users", headers=headers)
    assert response.status_code == 401
    assert response.json()["code"] == "auth.invalid_api_key"


def test_each_face_answers_its_own_paths_and_only_them(
    client: TestClient, db: Session, org: Organization
) -> None:
    """The faces are matched by their prefixes: an API path that does not exist is the
    API's problem, a console path the console's, anything else the portal's page."""
    key = factories.make_api_key(db, org)
    headers = {"Authorization": f"Bearer {key}"}

    missing = client.get("/api/v1/nothing-here", headers=headers)
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")

    wrong_method = client.put("/api/v1/users", headers=headers)
    assert wrong_method.status_code == 405
    assert "GET" in wrong_method.headers["allow"]

    console = client.get("/console", follow_redirects=False)
    assert console.status_code == 303
    assert console.headers["location"].startswith("/login")

    page = client.get("/console-nothing-here")
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert client.get("/login").status_code == 200
