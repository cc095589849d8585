"""Security headers on every page, and the session cookie over HTTPS."""

from __future__ import annotations

import dataclasses
import re

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests import factories
from tests.conftest import BoundDatabase
from userdesk.config import Settings
from userdesk.organizations.models import Organization
from userdesk.web.app import create_app
from userdesk.web.deps import HOST_SESSION_COOKIE, SESSION_COOKIE
from userdesk.web.security import TOKEN_PAGES


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
        assert "object-src 'none'" in csp
        assert "base-uri 'none'" in csp
        assert response.headers["referrer-policy"] == "strict-origin-when-cross-origin"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert "strict-transport-security" not in response.headers, path
    assert "x-content-type-options" in client.get("/api/v1/users").headers
    # No cross-origin reads: not even for an Origin that asks, on a page or the API.
    for path in ("/me", "/api/v1/users"):
        asked = client.get(path, headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in asked.headers
        assert "access-control-allow-credentials" not in asked.headers


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
        assert page.headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"
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


def _assert_security_headers(response: httpx.Response, label: str) -> None:
    csp = response.headers.get("content-security-policy", "")
    assert "default-src 'self'" in csp, label
    assert "script-src 'self'" in csp, label
    assert "frame-ancestors 'none'" in csp, label
    assert response.headers.get("x-content-type-options") == "nosniff", label
    assert response.headers.get("x-frame-options") == "DENY", label
    assert response.headers.get("referrer-policy"), label


def test_signed_in_pages_api_answers_exports_and_the_mailbox_are_never_stored(
    client: TestClient, db: Session, org: Organization
) -> None:
    """Whatever names users may be kept by neither the browser nor a proxy."""
    admin = factories.make_admin(db, org)
    factories.make_user(db, org)
    factories.login(client, admin.email)
    for path in (
        "/me",
        "/console/users",
        "/console/users/export",
        "/console/mailbox",
        "/console/audit",
        "/api/v1/users",
        "/api/v1/users/export",
        "/api/v1/openapi.json",
        "/api/v1/users/99999",
    ):
        response = client.get(path)
        assert response.status_code in (200, 404), (path, response.status_code)
        assert response.headers.get("cache-control") == "no-store", path
    export = client.get("/api/v1/users/export")
    assert export.headers["content-type"].startswith("text/csv")
    assert admin.email in export.text


@pytest.mark.parametrize("page", TOKEN_PAGES)
def test_token_pages_are_never_stored_and_send_no_referrer(client: TestClient, page: str) -> None:
    """A token page's address is a secret: not cached, and not sent on as a Referer."""
    response = client.get(f"{page}some-token-from-an-email")
    assert response.status_code < 500
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["referrer-policy"] == "no-referrer"
    _assert_security_headers(response, page)


def test_static_assets_may_be_cached(client: TestClient) -> None:
    """Scripts and style sheets name nobody: browsers keep them (validated by ETag)."""
    response = client.get("/static/js/userdesk.js")
    assert response.status_code == 200
    assert "no-store" not in response.headers.get("cache-control", "")
    assert response.headers["etag"]
    assert response.headers["x-content-type-options"] == "nosniff"


def _app_that_breaks(app: FastAPI) -> FastAPI:
    async def boom() -> None:
        raise RuntimeError("an unexpected failure: /password/reset/secret-token")

    app.add_api_route("/console/boom", boom)
    app.add_api_route("/api/v1/boom", boom)
    return app


def test_an_unexpected_error_is_a_500_that_carries_every_security_header(app: FastAPI) -> None:
    """Starlette answers a crash outside every middleware; ours answers it with the headers."""
    with TestClient(_app_that_breaks(app), raise_server_exceptions=False) as client:
        page = client.get("/console/boom")
        problem = client.get("/api/v1/boom")
    for response in (page, problem):
        assert response.status_code == 500
        _assert_security_headers(response, str(response.url))
        assert response.headers["cache-control"] == "no-store"
        assert "secret-token" not in response.text
        assert "Traceback" not in response.text
    assert page.headers["content-type"].startswith("text/html")
    assert "Something went wrong" in page.text
    assert problem.headers["content-type"] == "application/problem+json"
    assert problem.json() == {
        "type": "about:blank",
        "title": "Internal Server Error",
        "status": 500,
        "detail": "Something went wrong on our side; it has been logged.",
        "code": "server.error",
    }


def test_an_unexpected_error_still_reaches_the_server_to_be_logged(app: FastAPI) -> None:
    """Answering the 500 does not swallow the exception: the server logs it, tests see it."""
    with (
        TestClient(_app_that_breaks(app)) as client,
        pytest.raises(RuntimeError, match="unexpected failure"),
    ):
        client.get("/console/boom")


def test_the_api_docs_run_under_the_policy_from_this_sites_files(client: TestClient) -> None:
    """Swagger UI comes from /static (npm, through the lock file), started by a static file."""
    response = client.get("/api/v1/docs")
    assert response.status_code == 200
    _assert_security_headers(response, "/api/v1/docs")
    assert (
        "unsafe-inline"
        not in response.headers["content-security-policy"].split("style-src-attr")[0]
    )
    page = response.text
    urls = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert "/static/vendor/swagger-ui-bundle.js" in urls
    assert "/static/js/api-docs.js" in urls
    for url in urls:
        assert url.startswith("/static/") or url == "/favicon.ico", url
        assert client.get(url).status_code == 200, url
    for script in page.split("<script")[1:]:
        assert script.lstrip().startswith("src="), script[:80]
    assert "/api/v1/openapi.json" in page
    assert client.get("/api/v1/openapi.json").status_code == 200


def test_no_directory_is_listed_and_trace_is_not_answered(client: TestClient) -> None:
    """Folders of static files list nothing, and TRACE echoes nothing back."""
    for path in ("/static/", "/static/vendor/", "/static/js"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert "invite.js" not in response.text  # a file of /static/js a listing would name
        _assert_security_headers(response, path)
    for path in ("/login", "/api/v1/users", "/static/js/userdesk.js"):
        response = client.request("TRACE", path, headers={"X-Probe": "echo-me"})
        assert response.status_code == 405, path
        assert "echo-me" not in response.text
