"""The host product adds Not Activated users by email alone, and an admin activates them."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests import factories
from tests.mail.test_invitation_flow import NEW_PASSWORD, bearer, invite, outbox_link
from userdesk.audit.models import AuditEvent
from userdesk.mail.models import OutboxMessage
from userdesk.organizations.models import Organization
from userdesk.users.models import User


def audit_count(db: Session, org: Organization) -> int:
    return (
        db.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.organization_id == org.id)
        )
        or 0
    )


def test_a_pending_user_by_email_alone_is_created_once_and_kept_as_the_host_named_it(
    client: TestClient, db: Session, org: Organization
) -> None:
    key = factories.make_api_key(db, org)
    body = {"email": "Visitor@Example.com", "status": "pending", "created_via": "ticket"}
    before = audit_count(db, org)
    first = client.post("/api/v1/users", json=body, headers=bearer(key))
    assert first.status_code == 201, first.text
    user = first.json()
    assert (user["status"], user["status_label"], user["created_via"]) == (
        "pending",
        "Not Activated",
        "ticket",
    )
    assert user["last_login_at"] is None
    assert audit_count(db, org) == before + 1
    again = client.post(
        "/api/v1/users",
        json={"email": "visitor@example.com", "status": "pending", "created_via": "chat"},
        headers=bearer(key),
    )
    assert again.status_code == 200
    assert again.json()["id"] == user["id"]
    assert again.json()["created_via"] == "ticket"  # the first call's answer stands
    assert audit_count(db, org) == before + 1  # no second event

    listed = client.get(
        "/api/v1/users", params={"q": "login:never status:pending"}, headers=bearer(key)
    ).json()
    assert user["id"] in [u["id"] for u in listed["items"]]
    counts = client.get("/api/v1/users/counts", headers=bearer(key)).json()
    assert counts["without_login"]["count"] >= 1
    assert counts["statuses"]["pending"]["count"] >= 1


def test_a_pending_create_returns_the_active_user_there_and_a_plain_create_conflicts(
    client: TestClient, db: Session, org: Organization
) -> None:
    existing = factories.make_user(db, org, email="known@example.com")
    key = factories.make_api_key(db, org)
    pending = client.post(
        "/api/v1/users",
        json={"email": "known@example.com", "status": "pending"},
        headers=bearer(key),
    )
    assert pending.status_code == 200
    assert pending.json()["id"] == str(existing.id)
    assert pending.json()["status"] == "active"
    plain = client.post("/api/v1/users", json={"email": "known@example.com"}, headers=bearer(key))
    assert plain.status_code == 409


def test_another_status_or_a_bad_created_via_is_named_with_its_value(
    client: TestClient, db: Session, org: Organization
) -> None:
    key = factories.make_api_key(db, org)
    banned = client.post(
        "/api/v1/users", json={"email": "b@example.com", "status": "banned"}, headers=bearer(key)
    )
    assert banned.status_code == 400
    errors = {e["field"]: e["detail"] for e in banned.json()["errors"]}
    assert "'banned'" in errors["status"]
    odd = client.post(
        "/api/v1/users",
        json={"email": "c@example.com", "status": "pending", "created_via": "Help Desk!"},
        headers=bearer(key),
    )
    assert odd.status_code == 400
    errors = {e["field"]: e["detail"] for e in odd.json()["errors"]}
    assert "'Help Desk!'" in errors["created_via"]


def test_activating_a_user_known_by_email_alone_sends_a_registration_email_whose_link_activates(
    client: TestClient, db: Session, org: Organization
) -> None:
    key = factories.make_api_key(db, org)
    created = client.post(
        "/api/v1/users",
        json={"email": "chat@example.com", "status": "pending", "created_via": "chat"},
        headers=bearer(key),
    ).json()
    activated = client.post(f"/api/v1/users/{created['id']}/activate", headers=bearer(key))
    assert activated.status_code == 200, activated.text
    db.expire_all()
    message = db.scalars(
        select(OutboxMessage).where(OutboxMessage.recipient == "chat@example.com")
    ).one()
    assert message.payload["kind"] == "registration"
    assert "complete your registration" in message.payload["text"]
    link = outbox_link(db, "chat@example.com", "/password/reset/")
    page = client.get(link)
    token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    done = client.post(
        link, data={"password": NEW_PASSWORD, "password_again": NEW_PASSWORD, "csrf_token": token}
    )
    assert done.status_code == 200
    factories.login(client, "chat@example.com", NEW_PASSWORD)
    user = client.get(f"/api/v1/users/{created['id']}", headers=bearer(key)).json()
    assert (user["status"], user["email_verified"]) == ("active", True)


def test_activating_an_invited_user_still_sends_the_welcome_email(
    client: TestClient, db: Session, org: Organization
) -> None:
    key = factories.make_api_key(db, org)
    invite(client, key, {"email": "inv@example.com"})
    user_id = db.scalars(select(User.id).where(User.email == "inv@example.com")).one()
    assert client.post(f"/api/v1/users/{user_id}/activate", headers=bearer(key)).status_code == 200
    db.expire_all()
    kinds = db.scalars(
        select(OutboxMessage.payload).where(OutboxMessage.recipient == "inv@example.com")
    ).all()
    assert [k["kind"] for k in kinds] == ["invitation", "welcome"]
