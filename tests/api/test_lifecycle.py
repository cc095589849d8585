"""Changing a user's standing through the API: each move, its rules and its effects."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests import factories
from tests.mail.test_invitation_flow import NEW_PASSWORD, invite, outbox_link
from userdesk.audit.models import AuditEvent
from userdesk.auth.models import ApiKey
from userdesk.db.base import utcnow
from userdesk.invitations.models import Invitation
from userdesk.mail.models import OutboxMessage
from userdesk.organizations.models import Organization
from userdesk.users import lifecycle
from userdesk.users.models import User
from userdesk.webhooks.models import WebhookEndpoint, WebhookMessage


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def act(client: TestClient, key: str, user: User, action: str, **body: object):  # type: ignore[no-untyped-def]
    return client.post(f"/api/v1/users/{user.id}/{action}", json=body or None, headers=bearer(key))


CUTTING = [
    ("disable", {"reason": "Left the company"}),
    ("ban", {"reason": "Spam", "days": 3}),
    ("trash", {}),
]


@pytest.mark.parametrize(("action", "body"), CUTTING)
def test_a_move_that_removes_access_ends_a_live_session_on_the_next_request(
    client: TestClient, db: Session, org: Organization, action: str, body: dict
) -> None:
    key = factories.make_api_key(db, org)
    agent = factories.make_user(db, org, roles=("Agent",))
    factories.login(client, agent.email)
    assert client.get("/console/users").status_code == 200
    assert act(client, key, agent, action, **body).status_code == 200
    assert client.get("/console/users").status_code == 303
    assert client.get("/api/v1/users").status_code == 401


def test_delete_needs_the_email_typed_and_a_refusal_changes_nothing(
    client: TestClient, db: Session, org: Organization
) -> None:
    key = factories.make_api_key(db, org)
    agent = factories.make_user(db, org, roles=("Agent",), email="del@example.com")
    factories.login(client, agent.email)
    refused = client.request(
        "DELETE",
        f"/api/v1/users/{agent.id}",
        json={"confirm_email": "other@example.com"},
        headers=bearer(key),
    )
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["field"] == "confirm_email"
    db.expire_all()
    assert db.get(User, agent.id).status == "active"  # type: ignore[union-attr]
    assert client.get("/console/users").status_code == 200  # still signed in
    deleted = client.request(
        "DELETE",
        f"/api/v1/users/{agent.id}",
        json={"confirm_email": "DEL@example.com"},
        headers=bearer(key),
    )
    assert deleted.status_code == 200
    assert deleted.json()["status"] == "deleted"
    assert client.get("/console/users").status_code == 303


def test_an_illegal_move_is_a_409_naming_the_current_status(
    client: TestClient, db: Session, org: Organization
) -> None:
    key = factories.make_api_key(db, org)
    user = factories.make_user(db, org)
    response = act(client, key, user, "enable")
    assert response.status_code == 409
    assert response.json()["code"] == "user.illegal_move"
    assert "Active" in response.json()["detail"]


def test_disable_needs_a_reason_and_sign_in_then_says_so(
    client: TestClient, db: Session, org: Organization
) -> None:
    key = factories.make_api_key(db, org)
    user = factories.make_user(db, org)
    missing = act(client, key, user, "disable")
    assert missing.status_code == 400
    assert missing.json()["errors"][0] == {"field": "reason", "detail": "is required"}
    assert act(client, key, user, "disable", reason="Contract ended").json()["status"] == "disabled"
    page = client.get("/login")
    token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    refused = client.post(
        "/login", data={"email": user.email, "password": factories.PASSWORD, "csrf_token": token}
    )
    assert refused.status_code == 401
    assert "Your account is disabled" in refused.text
    assert "Contract ended" not in refused.text  # the organization does not show reasons
    wrong = client.post(
        "/login", data={"email": user.email, "password": "wrong password", "csrf_token": token}
    )
    assert "The email or password is not right." in wrong.text  # nothing told without it
    assert act(client, key, user, "enable").json()["status"] == "active"


def test_a_ban_needs_days_or_permanent_and_one_that_ran_out_lets_the_user_in(
    client: TestClient, db: Session, org: Organization
) -> None:
    key = factories.make_api_key(db, org)
    user = factories.make_user(db, org)
    assert act(client, key, user, "ban", reason="Spam").status_code == 400
    banned = act(client, key, user, "ban", reason="Spam", days=2).json()
    assert banned["status"] == "banned"
    assert banned["banned_until"] is not None
    with pytest.raises(AssertionError):
        factories.login(client, user.email)
    db.expire_all()
    row = db.get(User, user.id)
    assert row is not None
    row.status_until = utcnow() - timedelta(minutes=1)
    db.flush()
    factories.login(client, user.email)  # the ban ran out: lifted at sign-in
    db.expire_all()
    assert db.get(User, user.id).status == "active"  # type: ignore[union-attr]


def test_the_worker_lifts_bans_that_ran_out(db: Session, org: Organization) -> None:
    user = factories.make_user(db, org, status="banned")
    user.previous_status = "pending"
    user.status_until = utcnow() - timedelta(seconds=1)
    forever = factories.make_user(db, org, status="banned")
    db.flush()
    assert lifecycle.lift_expired_bans(db) == 1
    assert user.status == "pending"
    assert forever.status == "banned"


def test_trash_takes_the_users_objects_and_restore_brings_the_status_back(
    client: TestClient, db: Session, org: Organization
) -> None:
    key = factories.make_api_key(db, org)
    admin = factories.make_admin(db, org)
    owner = factories.make_user(db, org, roles=("Team Administrator",), status="disabled")
    own_key = ApiKey(
        organization_id=org.id,
        name="k",
        prefix="ud_x",
        key_hash="h" * 64,
        role_id=factories.role(db, org, "Agent").id,
        created_by_id=owner.id,
    )
    db.add(own_key)
    endpoint = WebhookEndpoint(
        organization_id=org.id, url="https://host.example/hooks", secret_sealed="v1:unused"
    )
    db.add(endpoint)
    db.flush()
    assert act(client, key, owner, "trash").json()["status"] == "trashed"
    db.refresh(own_key)
    assert own_key.revoked_at is not None
    event = db.scalars(
        select(WebhookMessage).where(WebhookMessage.endpoint_id == endpoint.id)
    ).one()
    assert (event.event_type, event.user_id) == ("user.trashed", owner.id)
    assert json.loads(event.body)["data"]["email"] == owner.email
    assert act(client, key, owner, "restore").json()["status"] == "disabled"
    assert admin.status == "active"


def test_deleting_a_pending_user_cancels_the_invitation_and_reactivate_invites_again(
    client: TestClient, db: Session, org: Organization
) -> None:
    key = factories.make_api_key(db, org)
    created = invite(client, key, {"email": "back@example.com"})["created"][0]
    old_link = outbox_link(db, "back@example.com", "/invite/")
    user = db.get(User, int(created["user_id"]))
    assert user is not None
    response = client.request(
        "DELETE",
        f"/api/v1/users/{user.id}",
        json={"confirm_email": "back@example.com"},
        headers=bearer(key),
    )
    assert response.status_code == 200
    invitation = db.scalars(select(Invitation).where(Invitation.user_id == user.id)).one()
    db.refresh(invitation)
    assert invitation.status == "revoked"
    assert client.get(old_link).status_code == 410
    assert act(client, key, user, "reactivate").json()["status"] == "pending"
    new_link = outbox_link(db, "back@example.com", "/invite/")
    message = db.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.recipient == "back@example.com")
        .order_by(OutboxMessage.id.desc())
    ).first()
    assert message is not None
    assert "reactivated" in message.payload["text"]
    page = client.get(new_link)
    token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    done = client.post(
        new_link,
        data={"password": NEW_PASSWORD, "password_again": NEW_PASSWORD, "csrf_token": token},
    )
    assert done.status_code == 303


def test_activate_makes_a_pending_user_active_with_a_set_password_email(
    client: TestClient, db: Session, org: Organization
) -> None:
    key = factories.make_api_key(db, org)
    user = factories.make_user(db, org, status="pending", password=None)
    assert act(client, key, user, "activate").json()["status"] == "active"
    assert outbox_link(db, user.email, "/password/reset/")


def test_validation_toggles_and_an_organization_can_require_it(
    client: TestClient, db: Session, org: Organization
) -> None:
    from userdesk.access.rules import system_actor
    from userdesk.organizations import service as organizations

    key = factories.make_api_key(db, org)
    user = factories.make_user(db, org)
    assert act(client, key, user, "validate").json()["validated"] is True
    assert act(client, key, user, "validate").status_code == 409
    assert act(client, key, user, "invalidate").json()["validated"] is False
    organizations.update_settings(db, actor=system_actor(org.id), require_validation=True)
    page = client.get("/login")
    token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    refused = client.post(
        "/login", data={"email": user.email, "password": factories.PASSWORD, "csrf_token": token}
    )
    assert "waiting for an administrator" in refused.text


def test_nobody_acts_on_themselves_on_a_stronger_user_or_on_the_last_administrator(
    client: TestClient, db: Session, org: Organization
) -> None:
    admin = factories.make_admin(db, org)
    team = factories.make_team(db, org)
    strong = factories.make_admin(db, org, team=team)
    team_key = factories.make_api_key(db, org, "Team Administrator", team=team)
    refused = act(client, team_key, strong, "disable", reason="x")
    assert refused.status_code == 403
    assert "settings.manage" in refused.json()["detail"]

    csrf = factories.login(client, admin.email)
    myself = client.post(
        f"/api/v1/users/{admin.id}/disable", json={"reason": "x"}, headers={"X-CSRF-Token": csrf}
    )
    assert myself.status_code == 409
    assert myself.json()["code"] == "user.self"

    key = factories.make_api_key(db, org)
    assert act(client, key, strong, "disable", reason="leaving").status_code == 200
    last = act(client, key, admin, "disable", reason="x")
    assert last.status_code == 409
    assert last.json()["code"] == "user.last_administrator"


def test_each_action_leaves_an_audit_event_with_its_reason(
    client: TestClient, db: Session, org: Organization
) -> None:
    key = factories.make_api_key(db, org)
    user = factories.make_user(db, org)
    act(client, key, user, "disable", reason="Security concern")
    act(client, key, user, "enable")
    act(client, key, user, "revoke-sessions")
    events = db.scalars(
        select(AuditEvent)
        .where(AuditEvent.target_type == "user", AuditEvent.target_id == str(user.id))
        .order_by(AuditEvent.id)
    ).all()
    assert [e.action for e in events] == ["user.disabled", "user.enabled", "user.sessions_revoked"]
    assert events[0].reason == "Security concern"
    assert events[0].changes == {"status": {"from": "active", "to": "disabled"}}


def test_only_an_administrator_or_team_administrator_deletes_a_team_administrator(
    client: TestClient, db: Session, org: Organization
) -> None:
    team = factories.make_team(db, org)
    target = factories.make_user(db, org, roles=("Team Administrator",), team=team)
    key = factories.make_api_key(db, org)
    strong = client.post(
        "/api/v1/roles",
        json={
            "name": "Everything but the name",
            "permissions": sorted(
                [
                    "users.read",
                    "users.create",
                    "users.update",
                    "users.delete",
                    "users.export",
                    "users.import",
                    "users.activity",
                    "users.moderate",
                    "users.activate",
                    "roles.assign",
                ]
            ),
        },
        headers=bearer(key),
    ).json()
    assert strong["id"]
    custom_key = factories.make_api_key(db, org, "Everything but the name")
    body = {"confirm_email": target.email}
    refused = client.request(
        "DELETE", f"/api/v1/users/{target.id}", json=body, headers=bearer(custom_key)
    )
    assert refused.status_code == 403
    assert "Team Administrator" in refused.json()["detail"]
    allowed = client.request("DELETE", f"/api/v1/users/{target.id}", json=body, headers=bearer(key))
    assert allowed.status_code == 200
