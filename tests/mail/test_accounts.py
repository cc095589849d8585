"""Adding users, verification emails and password resets."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests import factories
from tests.mail.test_invitation_flow import NEW_PASSWORD, bearer, outbox_link
from userdesk.access.rules import system_actor
from userdesk.errors import InvalidInput
from userdesk.mail import service as mail
from userdesk.mail.models import OutboxMessage
from userdesk.mail.rules import EmailKind, Template
from userdesk.organizations.models import Organization
from userdesk.users.models import User


def form_token(page_text: str) -> str:
    return page_text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]


def test_an_added_user_is_active_and_the_welcome_email_holds_a_link_not_a_password(
    client: TestClient, db: Session, org: Organization
) -> None:
    key = factories.make_api_key(db, org)
    response = client.post(
        "/api/v1/users",
        json={"email": "lee@example.com", "first_name": "Lee", "send_welcome_email": True},
        headers=bearer(key),
    )
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "active"
    created = db.scalars(select(User).where(User.email == "lee@example.com")).one()
    assert created.password_hash is None  # no password exists to be emailed
    link = outbox_link(db, "lee@example.com", "/password/reset/")
    page = client.get(link)
    accepted = client.post(
        link,
        data={
            "password": NEW_PASSWORD,
            "password_again": NEW_PASSWORD,
            "csrf_token": form_token(page.text),
        },
    )
    assert accepted.status_code == 200
    factories.login(client, "lee@example.com", NEW_PASSWORD)


def test_adding_a_taken_email_is_a_conflict_naming_the_field(
    client: TestClient, db: Session, org: Organization
) -> None:
    factories.make_user(db, org, email="taken@example.com")
    key = factories.make_api_key(db, org)
    response = client.post(
        "/api/v1/users", json={"email": "Taken@example.com"}, headers=bearer(key)
    )
    assert response.status_code == 409
    assert response.json()["errors"][0]["field"] == "email"


def test_a_role_the_actor_lacks_cannot_be_granted(
    client: TestClient, db: Session, org: Organization
) -> None:
    team = factories.make_team(db, org)
    key = factories.make_api_key(db, org, "Team Administrator", team=team)
    admin_role = factories.role(db, org, "Administrator")
    response = client.post(
        "/api/v1/users",
        json={"email": "up@example.com", "role_ids": [str(admin_role.id)]},
        headers=bearer(key),
    )
    assert response.status_code == 403
    assert "settings.manage" in response.json()["detail"]
    ok = client.post("/api/v1/users", json={"email": "in@example.com"}, headers=bearer(key))
    assert ok.status_code == 201
    assert ok.json()["team"]["id"] == str(team.id)  # lands in the team admin's team


def test_a_new_verification_link_verifies_and_the_old_one_dies(
    client: TestClient, db: Session, org: Organization
) -> None:
    user = factories.make_user(db, org, email="mo@example.com")
    user.email_verified_at = None
    db.flush()
    key = factories.make_api_key(db, org)
    url = f"/api/v1/users/{user.id}/verification-email"
    assert client.post(url, headers=bearer(key)).status_code == 202
    first = outbox_link(db, "mo@example.com", "/verify/")
    assert client.post(url, headers=bearer(key)).status_code == 202
    second = outbox_link(db, "mo@example.com", "/verify/")
    assert client.get(first).status_code == 410
    page = client.get(second)
    assert page.status_code == 200
    assert "mo@example.com is confirmed" in page.text
    assert client.get(f"/api/v1/users/{user.id}", headers=bearer(key)).json()["email_verified"]
    assert client.post(url, headers=bearer(key)).status_code == 409


def test_forgot_password_answers_the_same_whether_or_not_the_email_exists(
    client: TestClient, db: Session, org: Organization
) -> None:
    factories.make_user(db, org, email="nia@example.com")
    answers = []
    for email in ("nia@example.com", "nobody@example.com"):
        page = client.get("/password/forgot")
        response = client.post(
            "/password/forgot", data={"email": email, "csrf_token": form_token(page.text)}
        )
        assert response.status_code == 200
        answers.append(response.text.replace(email, "EMAIL"))
    assert answers[0] == answers[1]
    recipients = db.scalars(select(OutboxMessage.recipient)).all()
    assert "nia@example.com" in recipients
    assert "nobody@example.com" not in recipients


def test_a_reset_link_sets_the_password_once_and_ends_other_sessions(
    client: TestClient, db: Session, org: Organization
) -> None:
    user = factories.make_user(db, org, email="ola@example.com")
    other = TestClient(client.app, follow_redirects=False)
    factories.login(other, user.email)
    page = client.get("/password/forgot")
    client.post("/password/forgot", data={"email": user.email, "csrf_token": form_token(page.text)})
    link = outbox_link(db, user.email, "/password/reset/")
    form = client.get(link)
    data = {
        "password": NEW_PASSWORD,
        "password_again": NEW_PASSWORD,
        "csrf_token": form_token(form.text),
    }
    assert client.post(link, data=data).status_code == 200
    assert other.get("/me").status_code == 303  # the old session is gone
    assert client.post(link, data=data).status_code == 410
    factories.login(client, user.email, NEW_PASSWORD)


def test_templates_render_in_a_sandbox_and_bad_ones_are_refused_by_field(
    db: Session, org: Organization
) -> None:
    actor = system_actor(org.id)
    with pytest.raises(InvalidInput) as caught:
        mail.update_template(
            db,
            actor=actor,
            kind=EmailKind.INVITATION,
            subject="Hi",
            body="{{ ''.__class__.__mro__ }}",
        )
    assert "body" in caught.value.fields
    with pytest.raises(InvalidInput) as caught:
        mail.update_template(
            db, actor=actor, kind=EmailKind.INVITATION, subject="{% if %}", body="x"
        )
    assert "subject" in caught.value.fields
    mail.update_template(
        db,
        actor=actor,
        kind=EmailKind.INVITATION,
        subject="Join {{ organization.name }}",
        body="Go: {{ link }}",
    )
    saved = mail.template_for(db, org.id, EmailKind.INVITATION)
    assert saved == Template("Join {{ organization.name }}", "Go: {{ link }}")
    shown = mail.preview(saved)
    assert shown.subject == "Join Acme"
    assert '<a href="https://userdesk.example/invite/sample-token">' in shown.html


def test_html_in_names_is_escaped_in_the_html_part(db: Session, org: Organization) -> None:
    user = factories.make_user(db, org, first_name="<b>Ann</b>")
    message = mail.enqueue(
        db,
        organization_id=org.id,
        to=user.email,
        kind=EmailKind.VERIFICATION,
        context=mail.email_context(
            org, user, link="http://x.example/verify/t", expires=user.created_at
        ),
    )
    assert "<b>Ann</b>" not in message.payload["html"]
    assert "&lt;b&gt;Ann&lt;/b&gt;" in message.payload["html"]
    assert db.get(User, user.id) is not None


def test_a_signed_in_person_asks_for_a_new_confirmation_link(
    client: TestClient, db: Session, org: Organization
) -> None:
    user = factories.make_user(db, org, email="pat@example.com")
    user.email_verified_at = None
    db.flush()
    csrf = factories.login(client, user.email)
    assert "Send me a new confirmation email" in client.get("/me").text
    sent = client.post("/me/verification-email", data={"csrf_token": csrf})
    assert sent.status_code == 303
    link = outbox_link(db, user.email, "/verify/")
    assert client.get(link).status_code == 200
    assert "Send me a new confirmation email" not in client.get("/me").text


def test_the_invitation_lifetime_is_an_organization_setting(
    client: TestClient, db: Session, org: Organization
) -> None:
    admin = factories.make_admin(db, org)
    csrf = factories.login(client, admin.email)
    bad = client.post("/console/settings", data={"invitation_ttl_days": "400", "csrf_token": csrf})
    assert bad.status_code == 400
    assert "400 is not between 1 and 90" in bad.text
    assert (
        client.post(
            "/console/settings", data={"invitation_ttl_days": "2", "csrf_token": csrf}
        ).status_code
        == 303
    )
    client.post(
        "/console/invite",
        data={
            "email": ["ttl@example.com"],
            "first_name": [""],
            "last_name": [""],
            "csrf_token": csrf,
        },
    )
    from userdesk.invitations.models import Invitation

    invitation = db.scalars(select(Invitation).where(Invitation.email == "ttl@example.com")).one()
    lifetime = invitation.expires_at - invitation.created_at
    assert 1.9 < lifetime.total_seconds() / 86400 < 2.1
