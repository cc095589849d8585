"""/me: a person changes their own name, password and email, and ends their sessions."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests import factories
from tests.api.test_impersonation import link_for, use_link
from tests.mail.smtp import SmtpServer, link_in, text_of
from userdesk.audit.models import AuditEvent
from userdesk.auth.models import LoginSession
from userdesk.auth.secrets import verify_password
from userdesk.impersonation.models import Impersonation
from userdesk.mail.models import OutboxMessage
from userdesk.organizations.models import Organization
from userdesk.users.models import User
from userdesk.worker import Worker

NEW_PASSWORD = "a long and unusual phrase"
CHROME_LINUX = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
FIREFOX_WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"


@pytest.fixture
def ann(db: Session, org: Organization) -> User:
    return factories.make_user(db, org, email="ann@example.com", first_name="Ann", last_name="Lee")


def browser(app: FastAPI, user_agent: str) -> TestClient:
    return TestClient(
        app,
        base_url="http://testserver",
        follow_redirects=False,
        headers={"User-Agent": user_agent},
    )


@pytest.fixture
def phone(app: FastAPI) -> Iterator[TestClient]:
    """Ann's second device, with its own cookies."""
    with browser(app, FIREFOX_WINDOWS) as client:
        yield client


@pytest.fixture
def laptop(app: FastAPI) -> Iterator[TestClient]:
    with browser(app, CHROME_LINUX) as client:
        yield client


def audit_rows(db: Session, user: User, action: str) -> list[AuditEvent]:
    db.expire_all()
    return list(
        db.scalars(
            select(AuditEvent).where(
                AuditEvent.target_id == str(user.id), AuditEvent.action == action
            )
        )
    )


def outbox_to(db: Session, address: str) -> list[OutboxMessage]:
    db.expire_all()
    return list(db.scalars(select(OutboxMessage).where(OutboxMessage.recipient == address)))


def change_password(
    client: TestClient, csrf: str, current: str, new: str, *, others: bool = True, again: str = ""
) -> str:
    data = {
        "csrf_token": csrf,
        "current_password": current,
        "new_password": new,
        "new_password_again": again or new,
    }
    if others:
        data["sign_out_others"] = "1"
    response = client.post("/me/password", data=data)
    return f"{response.status_code} {response.headers.get('location', '')}\n{response.text}"


def test_the_page_shows_each_section_and_the_sessions_with_this_one_marked(
    laptop: TestClient, phone: TestClient, ann: User
) -> None:
    factories.login(laptop, ann.email)
    factories.login(phone, ann.email)
    page = laptop.get("/me")
    assert page.status_code == 200
    for section in ("Profile", "Email", "Password", "Sessions", "Sign out everywhere else"):
        assert section in page.text
    assert "Chrome on Linux" in page.text
    assert "Firefox on Windows" in page.text
    assert page.text.count("This session") == 1
    row = page.text.split("This session", 1)[0].rsplit("<tr", 1)[1]
    assert "Chrome on Linux" in row


def test_a_person_changes_their_name_and_the_audit_names_them_as_the_actor(
    laptop: TestClient, db: Session, ann: User
) -> None:
    csrf = factories.login(laptop, ann.email)
    response = laptop.post(
        "/me/name", data={"csrf_token": csrf, "first_name": " Anna ", "last_name": "Berg"}
    )
    assert response.status_code == 303
    page = laptop.get(response.headers["location"]).text
    assert "Your name is saved." in page
    assert "Anna Berg" in page
    db.refresh(ann)
    assert (ann.first_name, ann.last_name) == ("Anna", "Berg")
    (event,) = audit_rows(db, ann, "user.updated")
    assert event.actor_user_id == ann.id
    assert event.impersonator_id is None
    assert event.changes["first_name"] == {"from": "Ann", "to": "Anna"}


def test_a_too_long_name_is_shown_next_to_the_field_and_nothing_changes(
    laptop: TestClient, db: Session, ann: User
) -> None:
    csrf = factories.login(laptop, ann.email)
    response = laptop.post(
        "/me/name", data={"csrf_token": csrf, "first_name": "A" * 101, "last_name": "Lee"}
    )
    assert response.status_code == 400
    assert 'data-testid="name-first_name-error"' in response.text
    assert "longer than 100 characters" in response.text
    db.refresh(ann)
    assert ann.first_name == "Ann"


def test_a_form_without_the_csrf_token_is_refused(
    laptop: TestClient, db: Session, ann: User
) -> None:
    factories.login(laptop, ann.email)
    response = laptop.post("/me/name", data={"first_name": "Eve", "last_name": "Lee"})
    assert response.status_code == 403
    db.refresh(ann)
    assert ann.first_name == "Ann"


def test_a_wrong_current_password_is_named_on_its_field(
    laptop: TestClient, db: Session, ann: User
) -> None:
    csrf = factories.login(laptop, ann.email)
    result = change_password(laptop, csrf, "not my password", NEW_PASSWORD)
    assert result.startswith("400")
    assert 'data-testid="password-current_password-error"' in result
    assert "is not your current password" in result
    db.refresh(ann)
    assert verify_password(ann.password_hash, factories.PASSWORD)
    assert audit_rows(db, ann, "user.password_changed") == []


def test_wrong_current_passwords_are_limited_then_even_the_right_one_waits(
    laptop: TestClient, db: Session, ann: User
) -> None:
    """A stolen session does not become a way to guess the password."""
    csrf = factories.login(laptop, ann.email)
    for _ in range(10):
        assert change_password(laptop, csrf, "a wrong guess", NEW_PASSWORD).startswith("400")
    refused = change_password(laptop, csrf, factories.PASSWORD, NEW_PASSWORD)
    assert refused.startswith("429")
    assert 'data-testid="password-error"' in refused
    assert "Too many attempts. Try again in 15 minutes." in refused
    email = ask_email(laptop, csrf, "new@example.com", factories.PASSWORD)
    assert email.startswith("429")
    db.refresh(ann)
    assert verify_password(ann.password_hash, factories.PASSWORD)


@pytest.mark.parametrize(
    ("new", "again", "field", "says"),
    [
        ("short", "", "new_password", "at least 8 characters"),
        ("password123", "", "new_password", "most common passwords"),
        ("my own userdesk login", "", "new_password", "contains &#39;userdesk&#39;"),
        ("organization of mine", "", "new_password", "contains &#39;organization&#39;"),
        (factories.PASSWORD, "", "new_password", "same as the current password"),
        (NEW_PASSWORD, "something else entirely", "new_password_again", "does not match"),
    ],
)
def test_a_new_password_must_pass_the_rules(
    laptop: TestClient, db: Session, ann: User, new: str, again: str, field: str, says: str
) -> None:
    csrf = factories.login(laptop, ann.email)
    result = change_password(laptop, csrf, factories.PASSWORD, new, again=again)
    assert result.startswith("400")
    assert f'data-testid="password-{field}-error"' in result
    assert says in result
    db.refresh(ann)
    assert verify_password(ann.password_hash, factories.PASSWORD)


def test_changing_the_password_signs_out_the_other_sessions_and_keeps_this_one(
    laptop: TestClient, phone: TestClient, db: Session, ann: User
) -> None:
    csrf = factories.login(laptop, ann.email)
    factories.login(phone, ann.email)
    assert phone.get("/me").status_code == 200
    result = change_password(laptop, csrf, factories.PASSWORD, NEW_PASSWORD)
    assert result.startswith("303 /me?done=password&ended=1"), result
    page = laptop.get("/me?done=password&ended=1")
    assert page.status_code == 200  # this session goes on
    assert "1 other session signed out" in page.text
    assert phone.get("/me").status_code == 303  # the phone's cookie no longer works
    db.refresh(ann)
    assert verify_password(ann.password_hash, NEW_PASSWORD)
    (event,) = audit_rows(db, ann, "user.password_changed")
    assert event.actor_user_id == ann.id
    assert event.changes == {"other_sessions_signed_out": 1}
    (notice,) = outbox_to(db, ann.email)
    assert notice.subject == "Your password was changed"
    assert notice.payload["kind"] == "password_changed"
    assert "/password/forgot" in notice.payload["text"]
    laptop.cookies.clear()
    factories.login(laptop, ann.email, NEW_PASSWORD)


def test_changing_the_password_may_leave_the_other_sessions_signed_in(
    laptop: TestClient, phone: TestClient, ann: User
) -> None:
    csrf = factories.login(laptop, ann.email)
    factories.login(phone, ann.email)
    result = change_password(laptop, csrf, factories.PASSWORD, NEW_PASSWORD, others=False)
    assert result.startswith("303 /me?done=password&ended=0"), result
    assert phone.get("/me").status_code == 200


def test_ending_one_session_signs_out_that_device_only(
    laptop: TestClient, phone: TestClient, app: FastAPI, db: Session, ann: User
) -> None:
    csrf = factories.login(laptop, ann.email)
    factories.login(phone, ann.email)
    with browser(app, "curl/8.5.0") as third:
        factories.login(third, ann.email)
        phone_session = db.scalars(
            select(LoginSession).where(
                LoginSession.user_id == ann.id, LoginSession.user_agent == FIREFOX_WINDOWS
            )
        ).one()
        response = laptop.post(
            f"/me/sessions/{phone_session.id}/end",
            data={"csrf_token": csrf, "current_password": factories.PASSWORD},
        )
        assert response.status_code == 303
        assert "That session is signed out." in laptop.get(response.headers["location"]).text
        assert phone.get("/me").status_code == 303
        assert third.get("/me").status_code == 200
    assert laptop.get("/me").status_code == 200
    (event,) = audit_rows(db, ann, "user.session_ended")
    assert event.actor_user_id == ann.id
    assert event.changes == {"session": phone_session.id, "device": "Firefox on Windows"}
    again = laptop.post(
        f"/me/sessions/{phone_session.id}/end",
        data={"csrf_token": csrf, "current_password": factories.PASSWORD},
    )
    assert again.status_code == 404  # ended already


def test_the_current_session_or_someone_elses_cannot_be_ended_from_here(
    laptop: TestClient, db: Session, org: Organization, ann: User
) -> None:
    bob = factories.make_user(db, org)
    bobs = TestClient(laptop.app, follow_redirects=False)
    factories.login(bobs, bob.email)
    csrf = factories.login(laptop, ann.email)
    own = db.scalars(select(LoginSession).where(LoginSession.user_id == ann.id)).one()
    other = db.scalars(select(LoginSession).where(LoginSession.user_id == bob.id)).one()
    typed = {"csrf_token": csrf, "current_password": factories.PASSWORD}
    current = laptop.post(f"/me/sessions/{own.id}/end", data=typed)
    assert current.status_code == 400
    assert "sign out instead" in current.text
    foreign = laptop.post(f"/me/sessions/{other.id}/end", data=typed)
    assert foreign.status_code == 404
    assert bobs.get("/me").status_code == 200


def test_signing_out_everywhere_else_keeps_only_this_session(
    laptop: TestClient, phone: TestClient, app: FastAPI, db: Session, ann: User
) -> None:
    csrf = factories.login(laptop, ann.email)
    factories.login(phone, ann.email)
    with browser(app, "curl/8.5.0") as third:
        factories.login(third, ann.email)
        response = laptop.post(
            "/me/sessions/others/end",
            data={"csrf_token": csrf, "current_password": factories.PASSWORD},
        )
        assert response.headers["location"] == "/me?done=sessions&ended=2"
        assert third.get("/me").status_code == 303
    assert phone.get("/me").status_code == 303
    page = laptop.get(response.headers["location"]).text
    assert "Signed out of 2 other sessions." in page
    assert "Sign out everywhere else" not in page  # nothing else left
    (event,) = audit_rows(db, ann, "user.sessions_ended")
    assert event.actor_user_id == ann.id
    assert event.changes["sessions"] == 2


def test_ending_sessions_takes_the_current_password(
    laptop: TestClient, phone: TestClient, db: Session, ann: User
) -> None:
    """Someone who finds a signed-in browser cannot sign its owner out elsewhere."""
    csrf = factories.login(laptop, ann.email)
    factories.login(phone, ann.email)
    phone_session = db.scalars(
        select(LoginSession).where(
            LoginSession.user_id == ann.id, LoginSession.user_agent == FIREFOX_WINDOWS
        )
    ).one()
    for path in ("/me/sessions/others/end", f"/me/sessions/{phone_session.id}/end"):
        for typed in ("", "not my password"):
            refused = laptop.post(path, data={"csrf_token": csrf, "current_password": typed})
            assert refused.status_code == 400
            assert 'data-testid="sessions-current_password-error"' in refused.text
    assert phone.get("/me").status_code == 200
    assert audit_rows(db, ann, "user.sessions_ended") == []


def ask_email(client: TestClient, csrf: str, email: str, password: str) -> str:
    response = client.post(
        "/me/email", data={"csrf_token": csrf, "email": email, "current_password": password}
    )
    return f"{response.status_code} {response.headers.get('location', '')}\n{response.text}"


def test_an_email_change_is_confirmed_by_the_new_address_and_told_to_the_old(
    laptop: TestClient,
    db: Session,
    ann: User,
    smtp: SmtpServer,
    worker: Worker,
) -> None:
    csrf = factories.login(laptop, ann.email)
    result = ask_email(laptop, csrf, "ann.lee@example.org", factories.PASSWORD)
    assert result.startswith("303 /me?done=email"), result
    page = laptop.get("/me").text
    assert "ann.lee@example.org" in page  # waiting for confirmation
    db.refresh(ann)
    assert ann.email == "ann@example.com"  # nothing changes before the link is followed

    assert worker.run_once() == 2
    (confirm,) = smtp.inbox.to("ann.lee@example.org")
    assert confirm["Subject"] == "Confirm your new email address"
    (notice,) = smtp.inbox.to("ann@example.com")
    assert notice["Subject"] == "Your email address is being changed"
    assert "ann.lee@example.org" in text_of(notice)
    link = link_in(text_of(confirm), "/email/confirm/")
    assert laptop.get(link).status_code == 200
    db.refresh(ann)
    assert ann.email == "ann.lee@example.org"
    assert ann.email_verified_at is not None
    (event,) = audit_rows(db, ann, "user.email_change_requested")
    assert event.actor_user_id == ann.id
    assert event.changes == {"pending_email": {"from": None, "to": "ann.lee@example.org"}}


def test_an_email_change_needs_the_right_password_and_a_free_valid_address(
    laptop: TestClient, db: Session, org: Organization, ann: User
) -> None:
    factories.make_user(db, org, email="taken@example.com")
    csrf = factories.login(laptop, ann.email)
    wrong = ask_email(laptop, csrf, "new@example.com", "not my password")
    assert wrong.startswith("400")
    assert 'data-testid="email-current_password-error"' in wrong
    taken = ask_email(laptop, csrf, "Taken@example.com", factories.PASSWORD)
    assert taken.startswith("409")
    assert 'data-testid="email-email-error"' in taken
    assert "&#39;Taken@example.com&#39; is taken" in taken
    bad = ask_email(laptop, csrf, "not an address", factories.PASSWORD)
    assert bad.startswith("400")
    assert "is not an email address" in bad
    same = ask_email(laptop, csrf, "ANN@example.com", factories.PASSWORD)
    assert same.startswith("400")
    assert "is your current address" in same
    assert outbox_to(db, "new@example.com") == []
    assert outbox_to(db, ann.email) == []
    db.refresh(ann)
    assert ann.pending_email is None


def test_an_impersonating_admin_may_not_touch_the_password_email_or_sessions(
    client: TestClient, phone: TestClient, db: Session, org: Organization, ann: User
) -> None:
    """The admin sees the page, but credentials and the person's sessions stay theirs."""
    factories.make_admin(db, org)
    admin = factories.make_admin(db, org, first_name="Bob", last_name="Admin")
    factories.login(phone, ann.email)
    admin_csrf = factories.login(client, admin.email)
    with TestClient(client.app, base_url="http://testserver", follow_redirects=False) as acting:
        assert use_link(acting, link_for(client, admin_csrf, ann)) == 303
        page = acting.get("/me")
        assert page.status_code == 200
        assert "cannot be changed while an administrator is signed in as you" in page.text
        assert "Administrator signed in as you" in page.text
        csrf = page.text.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]
        password = change_password(acting, csrf, factories.PASSWORD, NEW_PASSWORD)
        assert password.startswith("403")
        assert "cannot change the password while impersonating" in password
        email = ask_email(acting, csrf, "admin-owned@example.com", factories.PASSWORD)
        assert email.startswith("403")
        others = acting.post("/me/sessions/others/end", data={"csrf_token": csrf})
        assert others.status_code == 403
        assert acting.get("/me").status_code == 200
    assert phone.get("/me").status_code == 200
    db.refresh(ann)
    assert verify_password(ann.password_hash, factories.PASSWORD)
    assert ann.pending_email is None
    assert audit_rows(db, ann, "user.password_changed") == []
    assert audit_rows(db, ann, "user.sessions_ended") == []


def test_a_person_can_end_an_admins_impersonation_of_them(
    client: TestClient, laptop: TestClient, db: Session, org: Organization, ann: User
) -> None:
    factories.make_admin(db, org)
    admin = factories.make_admin(db, org, first_name="Bob", last_name="Admin")
    admin_csrf = factories.login(client, admin.email)
    csrf = factories.login(laptop, ann.email)
    with TestClient(client.app, base_url="http://testserver", follow_redirects=False) as acting:
        assert use_link(acting, link_for(client, admin_csrf, ann)) == 303
        assert acting.get("/me").status_code == 200
        response = laptop.post(
            "/me/sessions/others/end",
            data={"csrf_token": csrf, "current_password": factories.PASSWORD},
        )
        assert response.status_code == 303
        assert acting.get("/me").status_code != 200
    (event,) = audit_rows(db, ann, "user.sessions_ended")
    assert event.actor_user_id == ann.id
    assert event.impersonator_id is None
    (impersonation,) = db.scalars(select(Impersonation).where(Impersonation.user_id == ann.id))
    assert event.changes["impersonations_ended"] == [impersonation.id]
    assert impersonation.ended_at is not None
    assert impersonation.end_reason == "signed out by Ann Lee"


def test_the_api_reads_and_renames_me_and_lists_and_ends_my_sessions(
    laptop: TestClient, phone: TestClient, db: Session, ann: User
) -> None:
    csrf = factories.login(laptop, ann.email)
    factories.login(phone, ann.email)
    me = laptop.get("/api/v1/me")
    assert me.status_code == 200
    assert me.json()["email"] == "ann@example.com"
    renamed = laptop.patch("/api/v1/me", json={"last_name": "Berg"}, headers={"X-CSRF-Token": csrf})
    assert renamed.status_code == 200, renamed.text
    assert (renamed.json()["first_name"], renamed.json()["last_name"]) == ("Ann", "Berg")
    sessions = laptop.get("/api/v1/me/sessions").json()
    assert {s["device"]: s["current"] for s in sessions} == {
        "Chrome on Linux": True,
        "Firefox on Windows": False,
    }
    (other,) = [s for s in sessions if not s["current"]]
    url = f"/api/v1/me/sessions/{other['id']}"
    typed = {"current_password": factories.PASSWORD}
    stale = laptop.request("DELETE", url, json=typed)
    assert stale.status_code == 403  # a write needs the CSRF token
    wrong = laptop.request(
        "DELETE", url, json={"current_password": "nope"}, headers={"X-CSRF-Token": csrf}
    )
    assert wrong.status_code == 400
    assert phone.get("/api/v1/me").status_code == 200
    ended = laptop.request("DELETE", url, json=typed, headers={"X-CSRF-Token": csrf})
    assert ended.status_code == 204
    assert phone.get("/api/v1/me").status_code == 401
    assert [e.action for e in audit_rows(db, ann, "user.updated")] == ["user.updated"]
    assert len(audit_rows(db, ann, "user.session_ended")) == 1


def test_an_api_key_has_no_me(client: TestClient, db: Session, org: Organization) -> None:
    key = factories.make_api_key(db, org)
    response = client.get("/api/v1/me", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 403
    assert response.json()["code"] == "me.no_person"
    assert "API key acts for no person" in response.json()["detail"]
