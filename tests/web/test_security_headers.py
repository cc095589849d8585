"""Security headers on every page, and the session cookie over HTTPS."""

from __future__ import annotations

import dataclasses

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests import factories
from tests.conftest import BoundDatabase
from userdesk.config import Settings
from userdesk.organizations.models import Organization
from userdesk.web.app import create_app
from userdesk.web.deps import HOST_SESSION_COOKIE, SESSION_COOKIE


def test_pages_carry_a_strict_content_security_policy_and_the_other_headers(
    client: TestClient, db: Session, org: Organization
) -> None:
    admin = factories.make_admin(db, org)
    factories.login(client, admin.email)
    for path in ("/login", "/password/forgot", "/console/users", "/me", "/no-such-page"):
        response = client.get(path)
        csp = response.headers["content-security-policy"]
        assert "default-src 'self'" in csp, path
        assert "script-src 'self'" in csp
        assert "unsafe-inline" not in csp.split("style-src-attr")[0]
        assert "unsafe-eval" not in csp
        assert "frame-ancestors 'none'" in csp
        assert response.headers["referrer-policy"] == "strict-origin-when-cross-origin"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert "strict-transport-security" not in response.headers, path
    assert "x-content-type-options" in client.get("/api/v1/users").headers


def test_pages_hold_no_inline_script_for_the_policy_to_block(
    client: TestClient, db: Session, org: Organization
) -> None:
    admin = factories.make_admin(db, org)
    factories.login(client, admin.email)
    for path in ("/login", "/console/users", "/console/invite", "/me"):
        page = client.get(path).text
        for script in page.split("<script")[1:]:
            assert script.lstrip().startswith("src="), (path, script[:80])
        assert "hx-on" not in page


def test_over_https_the_session_cookie_is_host_prefixed_and_hsts_is_sent(
    settings: Settings, database: BoundDatabase, db: Session, org: Organization
) -> None:
    app = create_app(dataclasses.replace(settings, base_url="https://testserver"), database)
    admin = factories.make_admin(db, org)
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        page = client.get("/login")
        assert page.headers["strict-transport-security"] == "max-age=31536000"
        token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        response = client.post(
            "/login",
            data={"email": admin.email, "password": factories.PASSWORD, "csrf_token": token},
        )
        assert response.status_code == 303
        cookie = next(
            c
            for c in response.headers.get_list("set-cookie")
            if c.startswith(f"{HOST_SESSION_COOKIE}=")
        )
        attributes = [part.strip().lower() for part in cookie.split(";")]
        assert {"secure", "path=/", "httponly"} <= set(attributes)
        assert not any(part.startswith("domain") for part in attributes)
        assert SESSION_COOKIE not in client.cookies
        assert client.get("/console/users").status_code == 200


def test_over_plain_http_the_session_cookie_keeps_its_name(
    client: TestClient, db: Session, org: Organization
) -> None:
    admin = factories.make_admin(db, org)
    factories.login(client, admin.email)
    assert SESSION_COOKIE in client.cookies
    assert HOST_SESSION_COOKIE not in client.cookies
