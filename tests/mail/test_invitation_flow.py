"""Invitations end to end over a real SMTP server: invite, read the email, follow the
link, set a password, sign in."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests import factories
from tests.conftest import BoundDatabase
from tests.mail.smtp import SmtpServer, link_in, text_of
from userdesk.config import Settings
from userdesk.db.base import utcnow
from userdesk.invitations.models import Invitation
from userdesk.mail.models import OutboxMessage
from userdesk.organizations.models import Organization
from userdesk.users.models import User
from userdesk.worker import Worker

NEW_PASSWORD = "a long and unusual phrase"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def invite(client: TestClient, key: str, *people: dict[str, str], **extra: object) -> dict:
    response = client.post(
        "/api/v1/invitations", json={"people": list(people), **extra}, headers=bearer(key)
    )
    assert response.status_code == 201, response.text
    return response.json()


def outbox_link(db: Session, to: str, path: str) -> str:
    db.expire_all()
    message = db.scalars(
        select(OutboxMessage).where(OutboxMessage.recipient == to).order_by(OutboxMessage.id.desc())
    ).first()
    assert message is not None
    return link_in(message.payload["text"], path)


def test_an_invited_person_reads_the_email_sets_a_password_and_signs_in(
    client: TestClient, db: Session, org: Organization, smtp: SmtpServer, worker: Worker
) -> None:
    key = factories.make_api_key(db, org)
    result = invite(
        client, key, {"email": "ann@example.com", "first_name": "Ann", "last_name": "Lee"}
    )
    assert [i["email"] for i in result["created"]] == ["ann@example.com"]
    assert result["created"][0]["status"] == "pending"

    assert worker.run_once() == 1
    (message,) = smtp.inbox.to("ann@example.com")
    assert "invited you to" in message["Subject"]
    text = text_of(message)
    assert "Hello Ann" in text
    link = link_in(text, "/invite/")

    page = client.get(link)
    assert page.status_code == 200
    assert "ann@example.com" in page.text
    token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    accepted = client.post(
        link,
        data={"password": NEW_PASSWORD, "password_again": NEW_PASSWORD, "csrf_token": token},
    )
    assert accepted.status_code == 303
    assert accepted.headers["location"] == "/me"
    me = client.get("/me").text
    assert "Active" in me
    db.expire_all()
    user = db.scalars(select(User).where(User.email == "ann@example.com")).one()
    assert user.status == "active"
    assert user.email_verified_at is not None

    client.cookies.clear()
    factories.login(client, "ann@example.com", NEW_PASSWORD)
    assert "ann@example.com" in client.get("/me").text
    assert client.get(link).status_code == 410  # used once, never again


def test_resend_issues_a_new_link_and_the_old_one_dies(
    client: TestClient, db: Session, org: Organization
) -> None:
    key = factories.make_api_key(db, org)
    invitation = invite(client, key, {"email": "bo@example.com"})["created"][0]
    old = outbox_link(db, "bo@example.com", "/invite/")
    resent = client.post(f"/api/v1/invitations/{invitation['id']}/resend", headers=bearer(key))
    assert resent.status_code == 200
    assert resent.json()["resend_count"] == 1
    new = outbox_link(db, "bo@example.com", "/invite/")
    assert new != old
    assert client.get(old).status_code == 404
    assert client.get(new).status_code == 200


def test_revoke_kills_the_link_at_once(client: TestClient, db: Session, org: Organization) -> None:
    key = factories.make_api_key(db, org)
    invitation = invite(client, key, {"email": "cy@example.com"})["created"][0]
    link = outbox_link(db, "cy@example.com", "/invite/")
    revoked = client.post(f"/api/v1/invitations/{invitation['id']}/revoke", headers=bearer(key))
    assert revoked.json()["status"] == "revoked"
    page = client.get(link)
    assert page.status_code == 410
    assert 'data-code="link.revoked"' in page.text
    again = client.post(f"/api/v1/invitations/{invitation['id']}/resend", headers=bearer(key))
    assert again.status_code == 409


def test_an_expired_link_fails_and_the_invitation_lists_as_expired(
    client: TestClient, db: Session, org: Organization
) -> None:
    key = factories.make_api_key(db, org)
    invite(client, key, {"email": "di@example.com"})
    link = outbox_link(db, "di@example.com", "/invite/")
    row = db.scalars(select(Invitation).where(Invitation.email == "di@example.com")).one()
    row.expires_at = utcnow() - timedelta(minutes=1)
    db.flush()
    page = client.get(link)
    assert page.status_code == 410
    assert 'data-code="link.expired"' in page.text
    listed = client.get("/api/v1/invitations", params={"status": "expired"}, headers=bearer(key))
    assert [i["email"] for i in listed.json()] == ["di@example.com"]
    pending = client.get("/api/v1/invitations", params={"status": "pending"}, headers=bearer(key))
    assert pending.json() == []


def test_people_already_in_the_organization_are_reported_not_duplicated(
    client: TestClient, db: Session, org: Organization
) -> None:
    existing = factories.make_user(db, org, email="eve@example.com")
    key = factories.make_api_key(db, org)
    result = invite(client, key, {"email": "EVE@example.com"}, {"email": "fay@example.com"})
    assert [i["email"] for i in result["created"]] == ["fay@example.com"]
    assert result["existing"] == [{"email": "eve@example.com", "user_id": str(existing.id)}]
    assert (
        len(db.scalars(select(User).where(User.email_normalized == "eve@example.com")).all()) == 1
    )


def test_bad_people_are_named_and_nobody_is_invited(
    client: TestClient, db: Session, org: Organization
) -> None:
    key = factories.make_api_key(db, org)
    response = client.post(
        "/api/v1/invitations",
        json={
            "people": [
                {"email": "good@example.com"},
                {"email": "not-an-email"},
                {"email": "good@example.com"},
            ]
        },
        headers=bearer(key),
    )
    assert response.status_code == 400
    errors = {e["field"]: e["detail"] for e in response.json()["errors"]}
    assert "not-an-email" in errors["people[1].email"]
    assert "listed twice" in errors["people[2].email"]
    assert db.scalars(select(User).where(User.email == "good@example.com")).first() is None


def test_only_holders_of_users_create_may_invite(
    client: TestClient, db: Session, org: Organization
) -> None:
    key = factories.make_api_key(db, org, "Agent")
    response = client.post(
        "/api/v1/invitations", json={"people": [{"email": "x@example.com"}]}, headers=bearer(key)
    )
    assert response.status_code == 403


def test_invitees_get_the_team_groups_and_roles_and_a_custom_email(
    client: TestClient, db: Session, org: Organization
) -> None:
    team = factories.make_team(db, org, "Support EU")
    group = factories.make_group(db, org, "VIP")
    agent = factories.role(db, org, "Agent")
    key = factories.make_api_key(db, org)
    result = invite(
        client,
        key,
        {"email": "gil@example.com", "first_name": "Gil"},
        team_id=str(team.id),
        group_ids=[str(group.id)],
        role_ids=[str(agent.id)],
        welcome_email={"send": True, "subject": "Welcome aboard, {{ user.first_name }}"},
    )
    user = client.get(
        f"/api/v1/users/{result['created'][0]['user_id']}", headers=bearer(key)
    ).json()
    assert user["status"] == "pending"
    assert user["team"]["name"] == "Support EU"
    assert [g["name"] for g in user["groups"]] == ["VIP"]
    assert [r["name"] for r in user["roles"]] == ["Agent"]
    message = db.scalars(
        select(OutboxMessage).where(OutboxMessage.recipient == "gil@example.com")
    ).one()
    assert message.subject == "Welcome aboard, Gil"
    broken = client.post(
        "/api/v1/invitations",
        json={"people": [{"email": "hal@example.com"}], "welcome_email": {"body": "{{ nope }"}},
        headers=bearer(key),
    )
    assert broken.status_code == 400
    assert broken.json()["errors"][0]["field"] == "welcome_email.body"


def test_no_email_is_queued_when_the_welcome_email_is_off(
    client: TestClient, db: Session, org: Organization
) -> None:
    key = factories.make_api_key(db, org)
    invite(client, key, {"email": "ida@example.com"}, welcome_email={"send": False})
    assert (
        db.scalars(
            select(OutboxMessage).where(OutboxMessage.recipient == "ida@example.com")
        ).first()
        is None
    )


def test_a_common_or_mismatched_password_is_refused_with_the_reason(
    client: TestClient, db: Session, org: Organization
) -> None:
    key = factories.make_api_key(db, org)
    invite(client, key, {"email": "jo@example.com"})
    link = outbox_link(db, "jo@example.com", "/invite/")
    page = client.get(link)
    token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    common = client.post(
        link, data={"password": "password123", "password_again": "password123", "csrf_token": token}
    )
    assert common.status_code == 400
    assert "most common passwords" in common.text
    mismatch = client.post(
        link, data={"password": NEW_PASSWORD, "password_again": "other", "csrf_token": token}
    )
    assert "does not match" in mismatch.text
    long_ok = "x" * 64 + " still fine"
    accepted = client.post(
        link, data={"password": long_ok, "password_again": long_ok, "csrf_token": token}
    )
    assert accepted.status_code == 303


def test_the_smtp_server_down_then_up_loses_nothing(
    client: TestClient, db: Session, org: Organization, database: BoundDatabase, settings: Settings
) -> None:
    key = factories.make_api_key(db, org)
    invite(client, key, {"email": "kim@example.com"})
    server = SmtpServer()  # not started yet: connections are refused
    worker = Worker(database, dataclasses.replace(settings, smtp_url=server.url))
    assert worker.run_once() == 1
    db.expire_all()
    message = db.scalars(
        select(OutboxMessage).where(OutboxMessage.recipient == "kim@example.com")
    ).one()
    assert message.status == "pending"
    assert message.attempts == 1
    assert message.last_error
    assert message.next_attempt_at > utcnow()
    assert worker.run_once() == 0  # not due yet
    message.next_attempt_at = utcnow()
    db.flush()
    server.start()
    try:
        assert worker.run_once() == 1
    finally:
        server.stop()
    db.expire_all()
    assert message.status == "sent"
    assert len(server.inbox.to("kim@example.com")) == 1
