from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests import factories
from userdesk.auth.models import LoginSession
from userdesk.organizations.models import Organization
from userdesk.web.deps import FORM_CSRF_COOKIE, SESSION_COOKIE


def login_form_token(client: TestClient) -> str:
    page = client.get("/login")
    return page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]


def post_login(client: TestClient, email: str, password: str):  # type: ignore[no-untyped-def]
    token = login_form_token(client)
    return client.post("/login", data={"email": email, "password": password, "csrf_token": token})


def test_an_anonymous_console_request_is_sent_to_login(client: TestClient) -> None:
    response = client.get("/console/users?sort=email")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/console/users%3Fsort%3Demail"


def test_an_admin_signs_in_with_a_session_cookie_that_scripts_cannot_read(
    client: TestClient, db: Session, org: Organization
) -> None:
    admin = factories.make_admin(db, org)
    response = post_login(client, admin.email, factories.PASSWORD)
    assert response.status_code == 303
    assert response.headers["location"] == "/console/users"
    cookie = next(
        c for c in response.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE)
    )
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie or "SameSite=Lax" in cookie
    stored = db.scalars(select(LoginSession).where(LoginSession.user_id == admin.id)).one()
    assert client.cookies[SESSION_COOKIE] not in (stored.token_hash, "")
    assert client.get("/console/users").status_code == 200


def test_sign_in_follows_next_but_never_off_site(
    client: TestClient, db: Session, org: Organization
) -> None:
    admin = factories.make_admin(db, org)
    for target, expected in (
        ("/console/settings", "/console/settings"),
        ("//evil.example", "/console/users"),
    ):
        client.cookies.clear()
        token = login_form_token(client)
        response = client.post(
            "/login",
            data={
                "email": admin.email,
                "password": factories.PASSWORD,
                "csrf_token": token,
                "next": target,
            },
        )
        assert response.headers["location"] == expected


def test_a_wrong_password_and_an_unknown_email_get_the_same_answer(
    client: TestClient, db: Session, org: Organization
) -> None:
    admin = factories.make_admin(db, org)
    wrong = post_login(client, admin.email, "not the password")
    unknown = post_login(client, "nobody@example.com", "not the password")
    assert wrong.status_code == unknown.status_code == 401
    message = "The email or password is not right."
    assert message in wrong.text
    assert message in unknown.text
    assert SESSION_COOKIE not in client.cookies


def test_a_login_post_without_the_form_token_is_refused(
    client: TestClient, db: Session, org: Organization
) -> None:
    admin = factories.make_admin(db, org)
    response = client.post("/login", data={"email": admin.email, "password": factories.PASSWORD})
    assert response.status_code == 403
    assert SESSION_COOKIE not in client.cookies


def test_signing_in_again_rotates_the_session(
    client: TestClient, db: Session, org: Organization
) -> None:
    admin = factories.make_admin(db, org)
    token = login_form_token(client)
    form = {"email": admin.email, "password": factories.PASSWORD, "csrf_token": token}
    client.post("/login", data=form)
    first = client.cookies[SESSION_COOKIE]
    client.cookies.set(FORM_CSRF_COOKIE, token, path="/")
    client.post("/login", data=form)
    second = client.cookies[SESSION_COOKIE]
    assert second != first
    stale = TestClient(client.app, follow_redirects=False)
    stale.cookies.set(SESSION_COOKIE, first)
    assert stale.get("/console/users").status_code == 303
    assert client.get("/console/users").status_code == 200


def test_signing_out_needs_the_csrf_token_and_ends_the_session(
    client: TestClient, db: Session, org: Organization
) -> None:
    admin = factories.make_admin(db, org)
    csrf = factories.login(client, admin.email)
    assert client.post("/logout").status_code == 403
    assert client.post("/logout", data={"csrf_token": "wrong"}).status_code == 403
    assert client.get("/console/users").status_code == 200
    response = client.post("/logout", data={"csrf_token": csrf})
    assert response.status_code == 303
    assert response.headers["location"] == "/login"
    client.cookies.clear()
    db.expire_all()
    stored = db.scalars(select(LoginSession).where(LoginSession.user_id == admin.id)).one()
    assert stored.revoked_at is not None


def test_a_status_change_cuts_a_live_session_on_the_next_request(
    client: TestClient, db: Session, org: Organization
) -> None:
    admin = factories.make_admin(db, org)
    factories.login(client, admin.email)
    assert client.get("/console/users").status_code == 200
    admin.status = "disabled"
    db.flush()
    assert client.get("/console/users").status_code == 303
    assert client.get("/api/v1/users").status_code == 401


def test_losing_the_role_closes_the_console_on_the_next_request(
    client: TestClient, db: Session, org: Organization
) -> None:
    from sqlalchemy import delete

    from userdesk.users.models import UserRole

    admin = factories.make_admin(db, org)
    factories.login(client, admin.email)
    assert client.get("/console/users").status_code == 200
    db.execute(delete(UserRole).where(UserRole.user_id == admin.id))
    db.flush()
    assert client.get("/console/users").status_code == 403


def test_an_api_write_with_the_session_cookie_needs_the_csrf_header(
    client: TestClient, db: Session, org: Organization
) -> None:
    admin = factories.make_admin(db, org)
    csrf = factories.login(client, admin.email)
    refused = client.post("/logout", headers={"X-CSRF-Token": "nope"})
    assert refused.status_code == 403
    assert client.post("/logout", headers={"X-CSRF-Token": csrf}).status_code == 303


def test_a_member_signs_in_to_their_own_page_not_the_console(
    client: TestClient, db: Session, org: Organization
) -> None:
    member = factories.make_user(db, org)
    response = post_login(client, member.email, factories.PASSWORD)
    assert response.headers["location"] == "/me"
    me = client.get("/me")
    assert member.email in me.text
    assert 'name="csrf-token"' in me.text
    assert client.get("/console/users").status_code == 403


def test_a_disabled_user_cannot_sign_in(client: TestClient, db: Session, org: Organization) -> None:
    user = factories.make_admin(db, org, status="disabled")
    assert post_login(client, user.email, factories.PASSWORD).status_code == 401
