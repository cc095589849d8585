"""Every mutating API operation leaves exactly one audit event."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests import factories
from tests.access.authorization_matrix import OWN_TEAM
from tests.access.test_authorization_matrix import OPERATIONS, World
from userdesk.audit.models import AuditEvent
from userdesk.organizations.models import Organization

NOT_CHANGES = {"bulk preview"}  # a POST that only reads


def events(db: Session, org: Organization) -> int:
    return (
        db.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.organization_id == org.id)
        )
        or 0
    )


def test_each_change_through_the_api_is_one_audit_event(
    client: TestClient, db: Session, org: Organization
) -> None:
    factories.make_admin(db, org)
    key = factories.make_api_key(db, org)
    world = World(
        db,
        org,
        client,
        key,
        factories.make_team(db, org, "Mine"),
        factories.make_team(db, org, "Theirs"),
    )
    checked = 0
    for operation in OPERATIONS:
        method, path, body, headers = operation.request(world, OWN_TEAM)
        if method == "GET" or operation.name in NOT_CHANGES:
            continue
        before = events(db, org)
        response = client.request(
            method, path, json=body, headers={"Authorization": f"Bearer {key}", **headers}
        )
        assert response.status_code < 400, (operation.name, response.text)
        assert events(db, org) - before == 1, operation.name
        checked += 1
    assert checked >= 20


def test_the_audit_api_filters_by_actor_action_target_and_time(
    client: TestClient, db: Session, org: Organization
) -> None:
    key = factories.make_api_key(db, org)
    headers = {"Authorization": f"Bearer {key}"}
    user = factories.make_user(db, org)
    client.post(f"/api/v1/users/{user.id}/disable", json={"reason": "why not"}, headers=headers)
    client.post(f"/api/v1/users/{user.id}/enable", headers=headers)
    client.post("/api/v1/teams", json={"name": "Audited"}, headers=headers)
    mine = client.get("/api/v1/audit", params={"target": str(user.id)}, headers=headers).json()
    assert [e["action"] for e in mine["items"]] == ["user.enabled", "user.disabled"]
    assert {e["target_name"] for e in mine["items"]} == {user.name}
    by_email = client.get(
        "/api/v1/audit", params={"target": user.email.upper()}, headers=headers
    ).json()
    assert by_email["items"] == mine["items"]
    unknown = client.get("/api/v1/audit", params={"target": "nobody@x.org"}, headers=headers)
    assert unknown.json()["items"] == []
    assert mine["items"][1]["reason"] == "why not"
    assert mine["items"][1]["changes"] == {"status": {"from": "active", "to": "disabled"}}
    on_users = client.get("/api/v1/audit", params={"action": "user."}, headers=headers).json()
    assert {e["action"] for e in on_users["items"]} == {"user.disabled", "user.enabled"}
    by_name = client.get("/api/v1/audit", params={"actor_name": "nobody"}, headers=headers).json()
    assert by_name["items"] == []
    later = client.get("/api/v1/audit", params={"since": "2999-01-01"}, headers=headers).json()
    assert later["items"] == []
    paged = client.get("/api/v1/audit", params={"limit": 1}, headers=headers).json()
    rest = client.get(
        "/api/v1/audit", params={"limit": 1, "cursor": paged["next_cursor"]}, headers=headers
    ).json()
    assert int(rest["items"][0]["id"]) < int(paged["items"][0]["id"])
    agent = factories.make_api_key(db, org, "Agent")
    assert (
        client.get("/api/v1/audit", headers={"Authorization": f"Bearer {agent}"}).status_code == 403
    )


def test_the_audit_page_opens_each_event(
    client: TestClient, db: Session, org: Organization
) -> None:
    admin = factories.make_admin(db, org)
    user = factories.make_user(db, org)
    csrf = factories.login(client, admin.email)
    client.post(
        f"/console/users/{user.id}/actions/disable",
        data={"reason": "Left the company", "csrf_token": csrf},
    )
    page = client.get("/console/audit", params={"action": "user.disabled"}).text
    assert 'data-testid="event-details"' in page
    assert "Left the company" in page
    assert "&#34;disabled&#34;" in page or "disabled" in page
