"""How long a session lives: the organization's idle and absolute limits, "keep me signed in",
and the ways a session ends early (a password change or reset, an admin's revoke)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests import factories
from userdesk.access import service as access
from userdesk.access.rules import system_actor
from userdesk.audit.models import AuditEvent
from userdesk.auth import service as auth
from userdesk.auth.models import LoginSession
from userdesk.auth.session_rules import (
    KEPT_IDLE,
    KEPT_MAX,
    SESSION_IDLE,
    SESSION_MAX,
    SessionLimits,
    ends_at,
    is_kept_token,
)
from userdesk.config import Settings
from userdesk.db.base import utcnow
from userdesk.errors import InvalidInput, PermissionDenied
from userdesk.organizations import service as organizations
from userdesk.organizations.models import Organization
from userdesk.users import account
from userdesk.users import service as users
from userdesk.users.models import User, UserRole
from userdesk.web.deps import SESSION_COOKIE

DAY = timedelta(days=1)


@pytest.fixture
def member(db: Session, org: Organization) -> User:
    return factories.make_user(db, org, email="mia@example.com")


@pytest.fixture
def other_device(app: FastAPI) -> Iterator[TestClient]:
    """A second browser, with cookies of its own."""
    with TestClient(app, base_url="http://testserver", follow_redirects=False) as client:
        yield client


def set_org(db: Session, org: Organization, **settings: object) -> None:
    organizations.update_settings(db, actor=system_actor(org.id, "tests"), **settings)  # type: ignore[arg-type]


def sign_in(client: TestClient, email: str, *, keep: str | None = None) -> Any:
    """Sign in through the portal's form; KEEP is sent as the "keep me signed in" field."""
    page = client.get("/login")
    token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    data = {"email": email, "password": factories.PASSWORD, "csrf_token": token}
    if keep is not None:
        data["keep_signed_in"] = keep
    response = client.post("/login", data=data)
    assert response.status_code == 303, response.text
    return response


def session_cookie(response: Any) -> str:
    cookies: list[str] = response.headers.get_list("set-cookie")
    return next(c for c in cookies if c.startswith(f"{SESSION_COOKIE}="))


def later(db: Session, user: User, **delta: float) -> None:
    """Move the clock forward by DELTA for USER's sessions (their times move back by it)."""
    step = timedelta(**delta)
    db.expire_all()
    for session in db.scalars(select(LoginSession).where(LoginSession.user_id == user.id)):
        session.created_at -= step
        session.last_seen_at -= step
        session.expires_at -= step
    db.flush()


def signed_in(client: TestClient) -> bool:
    """Whether CLIENT's session still opens the person's own page (and counts as a use)."""
    status = client.get("/me").status_code
    assert status in (200, 303)
    return status == 200


# The break of issue 16: sessions lasted 14 days, with a 24-hour idle limit.


def test_a_session_unused_for_30_minutes_ends_by_default(
    client: TestClient, db: Session, member: User
) -> None:
    """After 29 minutes unused a session goes on; after 30 more it has ended."""
    sign_in(client, member.email)
    later(db, member, minutes=29)
    assert signed_in(client)
    later(db, member, minutes=30)
    assert not signed_in(client)


def test_a_session_ends_10_hours_after_signing_in_however_busy(
    client: TestClient, db: Session, member: User
) -> None:
    """Used every 25 minutes, a session still ends 10 hours after the sign-in."""
    sign_in(client, member.email)
    for _ in range(23):  # 575 minutes
        later(db, member, minutes=25)
        assert signed_in(client)
    later(db, member, minutes=25)
    assert not signed_in(client)


def test_an_ordinary_session_cookie_ends_with_the_browser(client: TestClient, member: User) -> None:
    """Without "keep me signed in" the cookie has neither Max-Age nor Expires."""
    cookie = session_cookie(sign_in(client, member.email)).lower()
    assert "max-age" not in cookie
    assert "expires" not in cookie


# The limits are the organization's, and apply to the sessions already open.


def test_the_defaults_are_keycloaks() -> None:
    """30 minutes unused and 10 hours in all; kept sessions 14 days and 30 days."""
    assert (SESSION_IDLE.default, SESSION_MAX.default) == (30, 600)
    assert (KEPT_IDLE.default, KEPT_MAX.default) == (14 * 24 * 60, 30 * 24 * 60)


def test_a_session_ends_at_its_first_limit() -> None:
    """The cap, the lifetime from the sign-in and the idle limit from the last use: the
    earliest wins."""
    start = utcnow()
    limits = SessionLimits(idle=timedelta(minutes=30), lifetime=timedelta(hours=10))
    far = start + DAY

    def end(last_seen_minutes: int, expires: datetime = far) -> datetime:
        return ends_at(
            created_at=start,
            last_seen_at=start + timedelta(minutes=last_seen_minutes),
            expires_at=expires,
            limits=limits,
        )

    assert end(0) == start + timedelta(minutes=30)
    assert end(590) == start + timedelta(hours=10)
    assert end(0, start + timedelta(minutes=5)) == start + timedelta(minutes=5)


def test_changed_limits_apply_to_the_sessions_already_open(
    db: Session, settings: Settings, org: Organization, member: User
) -> None:
    """A longer idle limit lets an open session rest longer; a shorter lifetime ends it."""
    started = auth.start_session(db, settings=settings, user=member)
    now = utcnow()
    assert (
        auth.authenticate_session(
            db, settings=settings, token=started.token, now=now + timedelta(minutes=45)
        )
        is None
    )
    set_org(db, org, session_idle_minutes=60)
    found = auth.authenticate_session(
        db, settings=settings, token=started.token, now=now + timedelta(minutes=45)
    )
    assert found is not None
    set_org(db, org, session_max_minutes=90)
    assert auth.authenticate_session(
        db, settings=settings, token=started.token, now=now + timedelta(minutes=89)
    )
    assert (
        auth.authenticate_session(
            db, settings=settings, token=started.token, now=now + timedelta(minutes=91)
        )
        is None
    )


def test_last_use_is_written_at_most_once_a_minute(
    db: Session, settings: Settings, member: User
) -> None:
    """Requests within a minute of the last recorded use write nothing; a later one does."""
    started = auth.start_session(db, settings=settings, user=member)
    first = started.session.last_seen_at
    auth.authenticate_session(
        db, settings=settings, token=started.token, now=first + timedelta(seconds=59)
    )
    db.expire_all()
    assert db.get_one(LoginSession, started.session.id).last_seen_at == first
    auth.authenticate_session(
        db, settings=settings, token=started.token, now=first + timedelta(seconds=61)
    )
    db.expire_all()
    assert db.get_one(LoginSession, started.session.id).last_seen_at > first


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("session_idle_minutes", 0),
        ("session_idle_minutes", 24 * 60 + 1),
        ("session_idle_minutes", True),
        ("session_max_minutes", 4),
        ("session_max_minutes", -600),
        ("keep_signed_in_idle_minutes", 2**63),
        ("keep_signed_in_max_minutes", 365 * 24 * 60 + 1),
    ],
)
def test_a_session_limit_out_of_bounds_is_refused_naming_the_field(
    db: Session, org: Organization, field: str, value: object
) -> None:
    """Limits are whole minutes within bounds; anything else names the field and the value,
    and changes nothing."""
    with pytest.raises(InvalidInput) as refused:
        set_org(db, org, **{field: value})
    assert list(refused.value.fields) == [field]
    assert str(value) in refused.value.fields[field]
    db.refresh(org)
    assert field not in org.settings


def test_an_idle_limit_longer_than_the_lifetime_is_refused(db: Session, org: Organization) -> None:
    """A session cannot rest longer than it may last: the idle limit is named."""
    with pytest.raises(InvalidInput) as refused:
        set_org(db, org, session_idle_minutes=700)
    assert list(refused.value.fields) == ["session_idle_minutes"]
    with pytest.raises(InvalidInput) as refused:
        set_org(db, org, keep_signed_in_idle_minutes=600, keep_signed_in_max_minutes=300)
    assert list(refused.value.fields) == ["keep_signed_in_idle_minutes"]


def test_session_settings_need_settings_manage_and_are_audited(
    db: Session, org: Organization
) -> None:
    """A Team Administrator may not change them; an Administrator's change is audited."""
    team = factories.make_team(db, org)
    lead = factories.make_user(db, org, roles=("Team Administrator",), team=team)
    lead_actor = access.actor_for_user(db, lead)
    with pytest.raises(PermissionDenied):
        organizations.update_settings(db, actor=lead_actor, session_idle_minutes=600)
    admin = access.actor_for_user(db, factories.make_admin(db, org))
    organizations.update_settings(
        db, actor=admin, session_idle_minutes=15, session_max_minutes=480, keep_signed_in=True
    )
    event = db.scalars(
        select(AuditEvent)
        .where(AuditEvent.action == "organization.settings_changed")
        .order_by(AuditEvent.id.desc())
    ).first()
    assert event is not None
    assert event.actor_user_id == admin.user_id
    assert event.changes == {
        "session_idle_minutes": 15,
        "session_max_minutes": 480,
        "keep_signed_in": True,
    }


# Keep me signed in: end users only, where the organization allows it.


def test_the_sign_in_page_offers_keep_me_signed_in_only_where_allowed(
    client: TestClient, db: Session, org: Organization
) -> None:
    """Off by default: no checkbox; once the organization allows it, the checkbox shows."""
    assert 'name="keep_signed_in"' not in client.get("/login").text
    set_org(db, org, keep_signed_in=True)
    assert 'name="keep_signed_in"' in client.get("/login").text


def test_a_kept_session_has_a_lasting_cookie_and_the_longer_limits(
    client: TestClient, db: Session, org: Organization, member: User
) -> None:
    """A kept session's cookie lasts 30 days; the session outlives 10 hours and a day
    unused, and ends after 14 days unused."""
    set_org(db, org, keep_signed_in=True)
    cookie = session_cookie(sign_in(client, member.email, keep="true"))
    assert f"Max-Age={30 * 24 * 3600}" in cookie
    assert is_kept_token(client.cookies[SESSION_COOKIE])
    later(db, member, hours=11)
    assert signed_in(client)
    later(db, member, days=13, hours=23)
    assert signed_in(client)
    later(db, member, days=14, minutes=1)
    assert not signed_in(client)


def test_a_kept_session_still_ends_30_days_after_signing_in(
    client: TestClient, db: Session, org: Organization, member: User
) -> None:
    """Used every 13 days, a kept session ends 30 days after the sign-in."""
    set_org(db, org, keep_signed_in=True)
    sign_in(client, member.email, keep="true")
    later(db, member, days=13)
    assert signed_in(client)
    later(db, member, days=13)
    assert signed_in(client)
    later(db, member, days=4, minutes=1)
    assert not signed_in(client)


def test_keep_me_signed_in_is_ignored_where_the_organization_does_not_allow_it(
    client: TestClient, db: Session, member: User
) -> None:
    """A forged field gives an ordinary session: a browser cookie and 30 minutes unused."""
    cookie = session_cookie(sign_in(client, member.email, keep="true"))
    assert "max-age" not in cookie.lower()
    assert not is_kept_token(client.cookies[SESSION_COOKIE])
    later(db, member, minutes=31)
    assert not signed_in(client)


def test_a_client_cannot_turn_its_session_into_a_kept_one(
    client: TestClient, db: Session, org: Organization, member: User
) -> None:
    """The kept mark is part of the token, stored hashed: adding it to a cookie voids it."""
    set_org(db, org, keep_signed_in=True)
    sign_in(client, member.email)
    token = client.cookies[SESSION_COOKIE]
    client.cookies.clear()
    client.cookies.set(SESSION_COOKIE, "k." + token)
    assert not signed_in(client)
    client.cookies.clear()
    client.cookies.set(SESSION_COOKIE, token)
    assert signed_in(client)


def test_an_admin_never_keeps_a_session(client: TestClient, db: Session, org: Organization) -> None:
    """Someone with console access who ticks the box gets the ordinary limits."""
    set_org(db, org, keep_signed_in=True)
    admin = factories.make_admin(db, org)
    cookie = session_cookie(sign_in(client, admin.email, keep="true"))
    assert "max-age" not in cookie.lower()
    later(db, admin, minutes=31)
    assert client.get("/console/users").status_code == 303


def test_kept_sessions_take_the_ordinary_limits_when_the_organization_stops_allowing_them(
    client: TestClient, db: Session, org: Organization, member: User
) -> None:
    """Turning "keep me signed in" off ends kept sessions unused for over 30 minutes."""
    set_org(db, org, keep_signed_in=True)
    sign_in(client, member.email, keep="true")
    later(db, member, hours=1)
    set_org(db, org, keep_signed_in=False)
    assert not signed_in(client)


def test_a_kept_session_of_someone_made_an_admin_takes_the_ordinary_limits(
    client: TestClient, db: Session, org: Organization, member: User
) -> None:
    """Gaining console access gives an open kept session the ordinary limits at once."""
    set_org(db, org, keep_signed_in=True)
    sign_in(client, member.email, keep="true")
    later(db, member, hours=1)
    administrator = factories.role(db, org, "Administrator")
    db.add(UserRole(organization_id=org.id, user_id=member.id, role_id=administrator.id))
    db.flush()
    assert client.get("/console/users").status_code == 303


# Sessions end everywhere: a password change or reset, or an admin's "revoke sessions".


def test_an_admins_revoke_sessions_ends_every_session_of_the_user(
    client: TestClient,
    other_device: TestClient,
    app: FastAPI,
    db: Session,
    org: Organization,
    member: User,
) -> None:
    """Both of the user's browsers, the kept one included, are signed out at once."""
    set_org(db, org, keep_signed_in=True)
    sign_in(client, member.email, keep="true")
    sign_in(other_device, member.email)
    key = factories.make_api_key(db, org)
    with TestClient(app, base_url="http://testserver") as admin:
        revoked = admin.post(
            f"/api/v1/users/{member.id}/revoke-sessions",
            headers={"Authorization": f"Bearer {key}"},
        )
    assert revoked.status_code == 200, revoked.text
    assert not signed_in(client)
    assert not signed_in(other_device)


def test_a_password_reset_ends_every_session_of_the_user(
    client: TestClient, other_device: TestClient, db: Session, org: Organization, member: User
) -> None:
    """Setting a new password from an emailed link signs out every browser, kept or not."""
    set_org(db, org, keep_signed_in=True)
    sign_in(client, member.email, keep="true")
    sign_in(other_device, member.email)
    token, _ = auth.issue_user_token(
        db, user=member, purpose=users.SET_PASSWORD, ttl=timedelta(hours=1)
    )
    with TestClient(client.app, base_url="http://testserver") as stranger:
        page = stranger.get(f"/password/reset/{token}")
        form = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        reset = stranger.post(
            f"/password/reset/{token}",
            data={
                "password": "a long and unusual phrase",
                "password_again": "a long and unusual phrase",
                "csrf_token": form,
            },
        )
    assert reset.status_code == 200, reset.text
    assert not signed_in(client)
    assert not signed_in(other_device)


def test_a_password_change_ends_the_other_sessions_kept_ones_included(
    client: TestClient, other_device: TestClient, db: Session, org: Organization, member: User
) -> None:
    """A password changed on one device, asking to sign out the others, ends a kept session
    elsewhere and keeps this one."""
    set_org(db, org, keep_signed_in=True)
    sign_in(other_device, member.email, keep="true")
    sign_in(client, member.email)
    csrf = client.get("/me").text.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]
    changed = client.post(
        "/me/password",
        data={
            "csrf_token": csrf,
            "current_password": factories.PASSWORD,
            "new_password": "a long and unusual phrase",
            "new_password_again": "a long and unusual phrase",
            "sign_out_others": "1",
        },
    )
    assert changed.status_code == 303, changed.text
    assert signed_in(client)
    assert not signed_in(other_device)


def test_my_sessions_list_leaves_out_the_ones_that_idled_out(
    db: Session, settings: Settings, member: User
) -> None:
    """A session unused for 31 minutes is no longer listed on the person's own page."""
    stale = auth.start_session(db, settings=settings, user=member)
    later(db, member, minutes=31)
    fresh = auth.start_session(db, settings=settings, user=member)
    me = access.actor_for_user(db, member)
    listed = account.list_own_sessions(db, actor=me, user=member, current_session_id=None)
    assert [s.id for s in listed] == [fresh.session.id]
    assert stale.session.id != fresh.session.id
