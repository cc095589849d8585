"""Impersonation: a reason, a single-use link for another browser, a capped session, and
every step on the record under both names."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests import factories
from userdesk.access.models import Role, RolePermission
from userdesk.activity.models import ActivityEvent
from userdesk.audit.models import AuditEvent
from userdesk.auth.models import LoginSession
from userdesk.db.base import utcnow
from userdesk.impersonation.models import Impersonation
from userdesk.mail.models import OutboxMessage
from userdesk.organizations.models import Organization
from userdesk.users.models import User, UserRole

REASON = "Ann cannot find the invoice page"


@pytest.fixture
def other_browser(app: FastAPI) -> Iterator[TestClient]:
    """A second, separate browser: its own cookies."""
    with TestClient(app, base_url="http://testserver", follow_redirects=False) as client:
        yield client


@pytest.fixture
def admin(db: Session, org: Organization) -> User:
    factories.make_admin(db, org)  # never the last Administrator
    return factories.make_admin(db, org, first_name="Bob", last_name="Admin")


@pytest.fixture
def ann(db: Session, org: Organization) -> User:
    return factories.make_user(db, org, first_name="Ann", last_name="Lee")


def custom_role(db: Session, org: Organization, name: str, permissions: list[str]) -> Role:
    role = Role(organization_id=org.id, name=name, scope="organization", builtin=False)
    role.permission_rows = [
        RolePermission(organization_id=org.id, permission=p) for p in permissions
    ]
    db.add(role)
    db.flush()
    return role


def ask(client: TestClient, csrf: str, user: User, reason: str = REASON) -> Response:
    return client.post(
        f"/api/v1/users/{user.id}/impersonations",
        json={"reason": reason},
        headers={"X-CSRF-Token": csrf},
    )


def link_for(client: TestClient, csrf: str, user: User, reason: str = REASON) -> str:
    response = ask(client, csrf, user, reason)
    assert response.status_code == 201, response.text
    return str(response.json()["url"])


def use_link(browser: TestClient, url: str) -> int:
    """Open the link and confirm; returns the status of the confirmation."""
    path = url.removeprefix("http://testserver")
    page = browser.get(path)
    assert page.status_code == 200, page.text
    token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    return browser.post(path, data={"csrf_token": token}).status_code


def csrf_of(browser: TestClient) -> str:
    page = browser.get("/me")
    return page.text.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]


def events(db: Session, action: str) -> list[AuditEvent]:
    db.expire_all()
    return list(db.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def test_an_admin_gets_a_link_that_signs_another_browser_in_as_the_user(
    client: TestClient, other_browser: TestClient, db: Session, admin: User, ann: User
) -> None:
    csrf = factories.login(client, admin.email)
    response = ask(client, csrf, ann)
    assert response.status_code == 201
    made = response.json()
    assert made["url"].startswith("http://testserver/impersonate/")
    assert len(made["url"].rsplit("/", 1)[1]) >= 22  # at least 128 random bits, base64
    (started,) = events(db, "user.impersonation_started")
    assert (started.actor_user_id, started.target_id, started.reason) == (
        admin.id,
        str(ann.id),
        REASON,
    )
    stored = db.scalars(select(Impersonation)).one()
    assert stored.token_hash not in made["url"]
    assert timedelta(minutes=9) < stored.link_expires_at - utcnow() <= timedelta(minutes=10)

    page = other_browser.get(made["url"].removeprefix("http://testserver"))
    assert "Ann Lee" in page.text
    assert "Bob Admin" in page.text
    assert REASON in page.text
    assert events(db, "user.impersonation_url_used") == []  # opening is not using

    assert use_link(other_browser, made["url"]) == 303
    me = other_browser.get("/me")
    assert me.status_code == 200
    assert "You are signed in as <strong>Ann Lee</strong> by <strong>Bob Admin</strong>" in me.text
    (used,) = events(db, "user.impersonation_url_used")
    assert (used.actor_user_id, used.impersonator_id, used.impersonator_name) == (
        ann.id,
        admin.id,
        "Bob Admin",
    )
    assert used.reason == REASON
    session = db.scalars(select(LoginSession).where(LoginSession.user_id == ann.id)).one()
    lifetime = session.expires_at - session.created_at
    assert timedelta(minutes=59) < lifetime <= timedelta(minutes=60)
    # The admin's own session is untouched.
    assert client.get("/console/users").status_code == 200


def test_the_link_works_once_and_for_ten_minutes(
    client: TestClient, other_browser: TestClient, app: FastAPI, db: Session, admin: User, ann: User
) -> None:
    csrf = factories.login(client, admin.email)
    url = link_for(client, csrf, ann)
    assert use_link(other_browser, url) == 303
    with TestClient(app, base_url="http://testserver", follow_redirects=False) as third:
        again = third.get(url.removeprefix("http://testserver"))
        assert again.status_code == 410
        assert 'data-code="link.used"' in again.text

        late = link_for(client, csrf, ann)
        stale = db.scalars(select(Impersonation).where(Impersonation.used_at.is_(None))).one()
        stale.link_expires_at = utcnow() - timedelta(seconds=1)
        db.flush()
        expired = third.get(late.removeprefix("http://testserver"))
        assert expired.status_code == 410
        assert 'data-code="link.expired"' in expired.text
        assert third.get("/impersonate/not-a-token").status_code == 404


def test_what_is_done_while_impersonating_is_attributed_to_both(
    client: TestClient, other_browser: TestClient, db: Session, org: Organization, admin: User
) -> None:
    editor = custom_role(db, org, "Editor", ["users.read", "users.update"])
    ann = factories.make_user(db, org, first_name="Ann", last_name="Lee", roles=())
    db.add(UserRole(organization_id=org.id, user_id=ann.id, role_id=editor.id))
    other = factories.make_user(db, org, first_name="Carl")
    db.flush()
    use_link(other_browser, link_for(client, factories.login(client, admin.email), ann))
    csrf = csrf_of(other_browser)
    headers = {"X-CSRF-Token": csrf}
    etag = other_browser.get(f"/api/v1/users/{other.id}").headers["etag"]
    renamed = other_browser.patch(
        f"/api/v1/users/{other.id}",
        json={"first_name": "Carlos"},
        headers={**headers, "If-Match": etag},
    )
    assert renamed.status_code == 200, renamed.text
    (updated,) = events(db, "user.updated")
    assert (updated.actor_user_id, updated.impersonator_id, updated.impersonator_name) == (
        ann.id,
        admin.id,
        "Bob Admin",
    )
    # Ann's timeline shows the requests made as her, with the admin's name.
    db.expire_all()
    requests = db.scalars(
        select(ActivityEvent).where(
            ActivityEvent.user_id == ann.id, ActivityEvent.type == "impersonated.request"
        )
    ).all()
    assert {(e.properties["method"], e.properties["impersonated_by"]) for e in requests} >= {
        ("GET", "Bob Admin"),
        ("PATCH", "Bob Admin"),
    }
    admin_key = factories.make_api_key(db, org)
    timeline = client.get(
        f"/api/v1/users/{ann.id}/activity",
        headers={"Authorization": f"Bearer {admin_key}"},
    ).json()["items"]
    assert any(
        e["action"] == "user.impersonation_url_used" and e["impersonator"] == "Bob Admin"
        for e in timeline
    )


def test_email_roles_and_another_impersonation_are_refused_from_inside(
    client: TestClient, other_browser: TestClient, db: Session, org: Organization, admin: User
) -> None:
    power = custom_role(
        db,
        org,
        "Support lead",
        ["users.read", "users.update", "roles.assign", "users.impersonate"],
    )
    ann = factories.make_user(db, org, first_name="Ann", roles=())
    db.add(UserRole(organization_id=org.id, user_id=ann.id, role_id=power.id))
    carl = factories.make_user(db, org, first_name="Carl")
    db.flush()
    use_link(other_browser, link_for(client, factories.login(client, admin.email), ann))
    headers = {"X-CSRF-Token": csrf_of(other_browser)}

    def patch(body: dict[str, object]) -> int:
        etag = other_browser.get(f"/api/v1/users/{carl.id}").headers["etag"]
        return other_browser.patch(
            f"/api/v1/users/{carl.id}", json=body, headers={**headers, "If-Match": etag}
        ).status_code

    assert patch({"email": "carl.new@example.com"}) == 403
    assert patch({"role_ids": [str(power.id)]}) == 403
    assert patch({"first_name": "Carlos"}) == 200
    again = other_browser.post(
        f"/api/v1/users/{carl.id}/impersonations", json={"reason": "why not"}, headers=headers
    )
    assert again.status_code == 403
    assert "while impersonating" in again.json()["detail"]


def test_ending_closes_the_session_and_says_so_in_the_log(
    client: TestClient, other_browser: TestClient, db: Session, admin: User, ann: User
) -> None:
    use_link(other_browser, link_for(client, factories.login(client, admin.email), ann))
    csrf = csrf_of(other_browser)
    ended = other_browser.post("/impersonate/end", data={"csrf_token": csrf})
    assert ended.status_code == 200
    assert "no longer signed in as Ann" in ended.text
    assert other_browser.get("/me").status_code in (302, 303, 401)
    (event,) = events(db, "user.impersonation_ended")
    assert (event.impersonator_id, event.reason, event.changes["ended"]) == (
        admin.id,
        REASON,
        "ended",
    )


@pytest.mark.parametrize("change", ["demoted", "disabled"])
def test_the_session_dies_when_the_admin_may_no_longer_impersonate(
    client: TestClient,
    other_browser: TestClient,
    db: Session,
    org: Organization,
    admin: User,
    ann: User,
    change: str,
) -> None:
    use_link(other_browser, link_for(client, factories.login(client, admin.email), ann))
    assert other_browser.get("/me").status_code == 200
    if change == "demoted":
        db.execute(UserRole.__table__.delete().where(UserRole.user_id == admin.id))
        db.add(
            UserRole(
                organization_id=org.id,
                user_id=admin.id,
                role_id=factories.role(db, org, "Agent").id,
            )
        )
    else:
        admin.status = "disabled"
    db.flush()
    assert other_browser.get("/me").status_code in (302, 303, 401)
    # A page that does not need a session answers as to a stranger (and, here where the
    # test's requests share one transaction, is the one whose record stays).
    assert "Sign in to your account" in other_browser.get("/login").text
    (event,) = events(db, "user.impersonation_ended")
    assert "Bob Admin" in event.changes["ended"] or "impersonate" in event.changes["ended"]


@pytest.mark.parametrize("status", ["disabled", "banned", "trashed", "deleted", "pending"])
def test_only_active_users_can_be_impersonated(
    client: TestClient, db: Session, org: Organization, admin: User, status: str
) -> None:
    target = factories.make_user(db, org, status=status)
    csrf = factories.login(client, admin.email)
    response = ask(client, csrf, target)
    assert response.status_code == 403
    assert status in response.json()["detail"]


def test_who_may_not_impersonate_whom(
    client: TestClient, db: Session, org: Organization, admin: User, ann: User
) -> None:
    csrf = factories.login(client, admin.email)
    assert ask(client, csrf, admin).status_code == 403  # oneself
    peer = ask(client, csrf, factories.make_admin(db, org))  # not a strict subset
    assert peer.status_code == 403
    assert "every permission you hold" in peer.json()["detail"]
    no_reason = ask(client, csrf, ann, reason="  ")
    assert no_reason.status_code == 400
    assert no_reason.json()["errors"][0]["field"] == "reason"
    key = factories.make_api_key(db, org)
    by_key = client.post(
        f"/api/v1/users/{ann.id}/impersonations",
        json={"reason": REASON},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert by_key.status_code == 403
    team_admin = factories.make_user(db, org, roles=("Team Administrator",))
    with TestClient(client.app, base_url="http://testserver", follow_redirects=False) as other:
        other_csrf = factories.login(other, team_admin.email)
        refused = ask(other, other_csrf, ann)
        assert refused.status_code == 403  # Team Administrators lack users.impersonate
    assert events(db, "user.impersonation_started") == []


def test_the_organization_can_turn_it_off_and_have_users_told(
    client: TestClient,
    other_browser: TestClient,
    db: Session,
    org: Organization,
    admin: User,
    ann: User,
) -> None:
    csrf = factories.login(client, admin.email)
    org.settings = {**org.settings, "allow_impersonation": False}
    db.flush()
    off = ask(client, csrf, ann)
    assert off.status_code == 403
    assert "turned off" in off.json()["detail"]
    org.settings = {**org.settings, "allow_impersonation": True, "notify_impersonation": True}
    db.flush()
    use_link(other_browser, link_for(client, csrf, ann))
    db.expire_all()
    (notice,) = db.scalars(select(OutboxMessage).where(OutboxMessage.recipient == ann.email)).all()
    assert "Bob Admin" in (notice.subject or "")
    assert REASON in str(notice.payload)
