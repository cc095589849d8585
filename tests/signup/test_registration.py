"""Registering in the portal end to end over a real SMTP server: register, read the
email, follow the link, sign in; and what a closed or domain-limited organization says."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests import factories
from tests.mail.smtp import SmtpServer, link_in, text_of
from userdesk.access.rules import system_actor
from userdesk.audit.models import AuditEvent
from userdesk.mail.models import OutboxMessage
from userdesk.organizations import service as organizations
from userdesk.organizations.models import Organization
from userdesk.users.models import User
from userdesk.worker import Worker

PASSWORD = "a long and unusual phrase"


def open_registration(db: Session, org: Organization, policy: str = "open", **more: object) -> None:
    organizations.update_settings(db, actor=system_actor(org.id), registration=policy, **more)  # type: ignore[arg-type]


def csrf(page_text: str) -> str:
    return page_text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]


def register(client: TestClient, org: Organization, **fields: str):  # type: ignore[no-untyped-def]
    page = client.get(f"/signup?org={org.slug}")
    assert page.status_code == 200, page.text
    data = {"org": org.slug, "first_name": "Rita", "last_name": "Moreno", **fields}
    return client.post("/signup", data={**data, "csrf_token": csrf(page.text)})


def user_named(db: Session, email: str) -> User | None:
    db.expire_all()
    return db.scalar(select(User).where(User.email_normalized == email.lower()))


def messages_to(db: Session, email: str) -> list[OutboxMessage]:
    db.expire_all()
    return list(db.scalars(select(OutboxMessage).where(OutboxMessage.recipient == email)))


def test_a_person_registers_with_a_password_confirms_by_email_and_signs_in(
    client: TestClient, db: Session, org: Organization, smtp: SmtpServer, worker: Worker
) -> None:
    open_registration(db, org)
    answer = register(client, org, email="rita@example.com", password=PASSWORD)
    assert answer.status_code == 200
    assert "Check your email" in answer.text
    user = user_named(db, "rita@example.com")
    assert user is not None
    assert (user.status, user.created_via, user.email_verified_at) == ("pending", "signup", None)
    assert (user.first_name, user.last_name) == ("Rita", "Moreno")
    page = client.get("/login")
    refused = client.post(
        "/login",
        data={"email": "rita@example.com", "password": PASSWORD, "csrf_token": csrf(page.text)},
    )
    assert refused.status_code == 401
    assert "not activated yet" in refused.text

    assert worker.run_once() == 1
    (message,) = smtp.inbox.to("rita@example.com")
    text = text_of(message)
    assert PASSWORD not in text
    link = link_in(text, "/signup/confirm/")
    page = client.get(link)
    assert page.status_code == 200
    assert 'name="password"' not in page.text  # the password was chosen already
    confirmed = client.post(link, data={"csrf_token": csrf(page.text)})
    assert confirmed.status_code == 200
    assert "Your account is confirmed: sign in." in confirmed.text
    user = user_named(db, "rita@example.com")
    assert user is not None
    assert user.status == "active"
    assert user.email_verified_at is not None
    actions = db.scalars(
        select(AuditEvent.action)
        .where(AuditEvent.target_type == "user", AuditEvent.target_id == str(user.id))
        .order_by(AuditEvent.id)
    ).all()
    assert actions == ["user.registered", "user.registration_confirmed"]

    factories.login(client, "rita@example.com", PASSWORD)
    assert "rita@example.com" in client.get("/me").text
    assert client.get(link).status_code == 410  # works once


def test_without_a_password_the_link_leads_to_choosing_one_which_activates(
    client: TestClient, db: Session, org: Organization, smtp: SmtpServer, worker: Worker
) -> None:
    open_registration(db, org)
    assert register(client, org, email="sam@example.com").status_code == 200
    user = user_named(db, "sam@example.com")
    assert user is not None
    assert user.password_hash is None
    assert worker.run_once() == 1
    link = link_in(text_of(smtp.inbox.to("sam@example.com")[0]), "/signup/confirm/")
    page = client.get(link)
    assert 'name="password"' in page.text
    token = csrf(page.text)
    common = client.post(
        link, data={"password": "password", "password_again": "password", "csrf_token": token}
    )
    assert common.status_code == 400
    assert "most common passwords" in common.text
    mismatched = client.post(
        link, data={"password": PASSWORD, "password_again": "other", "csrf_token": token}
    )
    assert mismatched.status_code == 400
    done = client.post(
        link, data={"password": PASSWORD, "password_again": PASSWORD, "csrf_token": token}
    )
    assert done.status_code == 200
    assert "Your account is confirmed: sign in." in done.text
    factories.login(client, "sam@example.com", PASSWORD)


def test_an_invitation_only_organization_refuses_registration_politely(
    client: TestClient, db: Session, org: Organization
) -> None:
    page = client.get(f"/signup?org={org.slug}")
    assert page.status_code == 403
    assert "by invitation only" in page.text
    assert "Ask an administrator to invite you" in page.text
    sent = client.post("/signup", data={"org": org.slug, "email": "x@example.com"})
    assert sent.status_code == 403
    assert "by invitation only" in sent.text
    assert user_named(db, "x@example.com") is None
    assert client.get("/signup?org=no-such-org").status_code == 403


def test_the_only_organization_is_the_one_registered_in_when_none_is_named(
    client: TestClient, db: Session, org: Organization
) -> None:
    open_registration(db, org)
    assert db.scalar(select(func.count()).select_from(Organization)) == 1  # tests leave none
    page = client.get("/signup")
    assert page.status_code == 200
    assert org.name in page.text


def test_only_the_listed_domains_may_register_and_the_error_names_the_domain(
    client: TestClient, db: Session, org: Organization
) -> None:
    open_registration(db, org, "domains", registration_domains=["example.com"])
    refused = register(client, org, email="eve@Gmail.com")
    assert refused.status_code == 400
    assert "is at &#39;gmail.com&#39;, which may not register here" in refused.text
    assert "example.com" in refused.text
    assert user_named(db, "eve@gmail.com") is None
    assert register(client, org, email="ada@example.com").status_code == 200
    assert user_named(db, "ada@example.com") is not None


def test_bad_fields_are_named_with_their_values(
    client: TestClient, db: Session, org: Organization
) -> None:
    open_registration(db, org)
    answer = register(client, org, email="not-an-email", password="short")
    assert answer.status_code == 400
    assert "&#39;not-an-email&#39; is not an email address" in answer.text
    assert "must be at least 8 characters" in answer.text
    assert 'value="Rita"' in answer.text  # what was typed stays


def test_a_stale_form_is_refused(client: TestClient, db: Session, org: Organization) -> None:
    open_registration(db, org)
    answer = client.post(
        "/signup", data={"org": org.slug, "email": "z@example.com", "csrf_token": "forged"}
    )
    assert answer.status_code == 403
    assert user_named(db, "z@example.com") is None


def test_the_answer_is_the_same_for_a_registered_email_whose_owner_gets_a_notice(
    client: TestClient, db: Session, org: Organization
) -> None:
    open_registration(db, org)
    existing = factories.make_user(db, org, email="kim@example.com")
    hash_before = existing.password_hash
    answers = []
    for email in ("kim@example.com", "new@example.com"):
        response = register(client, org, email=email, password=PASSWORD)
        assert response.status_code == 200
        answers.append(response.text.replace(email, "EMAIL"))
    assert answers[0] == answers[1]
    (notice,) = messages_to(db, "kim@example.com")
    assert notice.subject == "Someone tried to register with your address"
    assert "/password/forgot" in notice.payload["text"]
    assert "/signup/confirm/" not in notice.payload["text"]
    kim = user_named(db, "kim@example.com")
    assert kim is not None
    assert (kim.status, kim.password_hash) == ("active", hash_before)  # nothing changed
    (confirmation,) = messages_to(db, "new@example.com")
    assert "/signup/confirm/" in confirmation.payload["text"]


def test_a_filled_honeypot_gets_the_same_answer_and_creates_nothing(
    client: TestClient, db: Session, org: Organization
) -> None:
    open_registration(db, org)
    robot = register(client, org, email="bot@example.com", website="http://spam.example")
    person = register(client, org, email="human@example.com")
    assert robot.status_code == person.status_code == 200
    assert robot.text.replace("bot@", "X@") == person.text.replace("human@", "X@")
    assert user_named(db, "bot@example.com") is None
    assert messages_to(db, "bot@example.com") == []
    assert user_named(db, "human@example.com") is not None


def test_where_users_must_be_validated_a_confirmed_account_waits_for_an_admin(
    client: TestClient, db: Session, org: Organization
) -> None:
    open_registration(db, org, require_validation=True)
    register(client, org, email="val@example.com", password=PASSWORD)
    (message,) = messages_to(db, "val@example.com")
    link = link_in(message.payload["text"], "/signup/confirm/")
    page = client.get(link)
    done = client.post(link, data={"csrf_token": csrf(page.text)})
    assert "An administrator must approve your account" in done.text
    login = client.get("/login")
    refused = client.post(
        "/login",
        data={"email": "val@example.com", "password": PASSWORD, "csrf_token": csrf(login.text)},
    )
    assert refused.status_code == 401
    assert "waiting for an administrator" in refused.text
    key = factories.make_api_key(db, org)
    user = user_named(db, "val@example.com")
    assert user is not None
    validated = client.post(
        f"/api/v1/users/{user.id}/validate", headers={"Authorization": f"Bearer {key}"}
    )
    assert validated.status_code == 200
    factories.login(client, "val@example.com", PASSWORD)


def test_registering_again_before_confirming_sends_a_new_link_and_the_old_one_dies(
    client: TestClient, db: Session, org: Organization
) -> None:
    open_registration(db, org)
    register(client, org, email="twice@example.com", password=PASSWORD)
    first = link_in(messages_to(db, "twice@example.com")[0].payload["text"], "/signup/confirm/")
    register(client, org, email="twice@example.com")
    links = [
        link_in(m.payload["text"], "/signup/confirm/") for m in messages_to(db, "twice@example.com")
    ]
    assert len(links) == 2
    assert links[0] == first
    assert client.get(first).status_code == 410
    page = client.get(links[-1])
    assert 'name="password"' in page.text  # the latest registration came without one
    assert (
        db.scalar(select(func.count()).select_from(User).where(User.email == "twice@example.com"))
        == 1
    )


def test_registration_is_rate_limited_per_email_with_a_clear_wait(
    client: TestClient, db: Session, org: Organization
) -> None:
    open_registration(db, org)
    statuses = [register(client, org, email="many@example.com").status_code for _ in range(4)]
    assert statuses[:3] == [200, 200, 200]
    assert statuses[3] == 429
    answer = register(client, org, email="many@example.com")
    assert "Try again in" in answer.text
    assert answer.headers["Retry-After"]
