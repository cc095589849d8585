from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests import factories
from userdesk.audit.models import AuditEvent
from userdesk.organizations.models import Organization


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_a_private_segment_is_seen_by_its_owner_only(
    client: TestClient, db: Session, org: Organization
) -> None:
    agent = factories.make_user(db, org, roles=("Agent",))
    other = factories.make_user(db, org, roles=("Agent",))
    csrf = factories.login(client, agent.email)
    created = client.post(
        "/api/v1/segments",
        json={"name": "Quiet ones", "query": "seen:>30d status:active", "sort": "-seen"},
        headers={"X-CSRF-Token": csrf},
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["shared"] is False
    assert body["owner_id"] == str(agent.id)
    assert [s["name"] for s in client.get("/api/v1/segments").json()] == ["Quiet ones"]

    client.cookies.clear()
    factories.login(client, other.email)
    assert client.get("/api/v1/segments").json() == []
    assert client.get(f"/api/v1/segments/{body['id']}").status_code == 404


def test_sharing_takes_settings_manage_and_shared_segments_reach_everyone(
    client: TestClient, db: Session, org: Organization
) -> None:
    agent_key = factories.make_api_key(db, org, "Agent")
    admin_key = factories.make_api_key(db, org)
    segment = {"name": "EU support", "query": 'team:"Support EU"', "shared": True}
    factories.make_team(db, org, "Support EU")
    refused = client.post("/api/v1/segments", json=segment, headers=bearer(agent_key))
    assert refused.status_code == 403
    made = client.post("/api/v1/segments", json=segment, headers=bearer(admin_key))
    assert made.status_code == 201
    names = [s["name"] for s in client.get("/api/v1/segments", headers=bearer(agent_key)).json()]
    assert names == ["EU support"]
    url = f"/api/v1/segments/{made.json()['id']}"
    edit = client.patch(url, json={"name": "Mine now"}, headers=bearer(agent_key))
    assert edit.status_code == 403


def test_a_segment_with_bad_fields_is_refused_naming_each(
    client: TestClient, db: Session, org: Organization
) -> None:
    key = factories.make_api_key(db, org)
    response = client.post(
        "/api/v1/segments",
        json={"name": " ", "query": "colour:red", "sort": "shoe-size", "shared": False},
        headers=bearer(key),
    )
    assert response.status_code == 400
    errors = {e["field"]: e["detail"] for e in response.json()["errors"]}
    assert errors["name"] == "is required"
    assert "colour:red" in errors["query"]
    assert "shoe-size" in errors["sort"]
    assert "shared" in errors  # an API key has no private space


def test_a_segment_is_edited_and_deleted_with_audit_events(
    client: TestClient, db: Session, org: Organization
) -> None:
    key = factories.make_api_key(db, org)
    made = client.post(
        "/api/v1/segments",
        json={"name": "Banned", "query": "status:banned", "shared": True},
        headers=bearer(key),
    ).json()
    edited = client.patch(
        f"/api/v1/segments/{made['id']}",
        json={"query": "status:banned,disabled", "sort": "-created"},
        headers=bearer(key),
    )
    assert edited.status_code == 200
    assert edited.json()["query"] == "status:banned,disabled"
    assert edited.json()["sort"] == "-created"
    assert client.delete(f"/api/v1/segments/{made['id']}", headers=bearer(key)).status_code == 204
    assert client.get(f"/api/v1/segments/{made['id']}", headers=bearer(key)).status_code == 404
    actions = db.scalars(
        select(AuditEvent.action)
        .where(AuditEvent.target_type == "segment", AuditEvent.target_id == made["id"])
        .order_by(AuditEvent.id)
    ).all()
    assert actions == ["segment.created", "segment.updated", "segment.deleted"]
