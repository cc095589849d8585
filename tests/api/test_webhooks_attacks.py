"""Webhooks through an attacker's eyes: who reaches what, what an answer gives away, what
bad input does, what two requests at once do, and how many endpoints an organization gets.

Each test is one way in that must stay shut: a team-scoped grant, an impersonating admin, a
guessed id of another organization, a secret looked for where it must not be, input built
to break a parser, two rotations racing.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any, TypeVar

import orjson
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, delete, func, select, update
from sqlalchemy.orm import Session

from tests import factories
from tests.api.test_impersonation import csrf_of, custom_role, link_for, use_link
from tests.api.test_webhooks_api import URL, add_message, bearer, create, errors_of
from userdesk.access.models import Role, RolePermission
from userdesk.access.rules import system_actor
from userdesk.audit.models import AuditEvent
from userdesk.config import Settings
from userdesk.db.base import utcnow
from userdesk.db.session import Database
from userdesk.errors import Conflict
from userdesk.organizations import service as organizations
from userdesk.organizations.models import Organization
from userdesk.users.models import User, UserRole
from userdesk.webhooks import delivery, signing
from userdesk.webhooks import service as webhooks
from userdesk.webhooks.models import WebhookAttempt, WebhookEndpoint, WebhookMessage
from userdesk.webhooks.schemas import ENDPOINTS_MAX, WebhookEndpointCreate

CONSOLE = "/console/settings/webhooks"
T = TypeVar("T")


def routes(endpoint_id: object, message_id: object) -> list[tuple[str, str, Any]]:
    """Every API route of one endpoint, with a body it takes."""
    base = f"/api/v1/webhooks/{endpoint_id}"
    return [
        ("get", base, None),
        ("patch", base, {"description": "mine"}),
        ("delete", base, None),
        ("post", f"{base}/rotate", None),
        ("post", f"{base}/test", None),
        ("get", f"{base}/messages", None),
        ("get", f"{base}/messages/{message_id}", None),
        ("post", f"{base}/messages/{message_id}/resend", None),
        ("post", f"{base}/replay", {"since": "2026-01-01T00:00:00Z"}),
    ]


def console_routes(endpoint_id: object, message_id: object) -> list[tuple[str, str, Any]]:
    """Every console page and form of one endpoint, with the form it takes."""
    base = f"{CONSOLE}/{endpoint_id}"
    return [
        ("get", base, None),
        ("post", base, {"url": URL}),
        ("post", f"{base}/pause", {}),
        ("post", f"{base}/resume", {}),
        ("post", f"{base}/rotate", {}),
        ("post", f"{base}/test", {}),
        ("post", f"{base}/delete", {"confirm": URL}),
        ("get", f"{base}/messages/{message_id}", None),
        ("post", f"{base}/messages/{message_id}/resend", {}),
        ("post", f"{base}/replay", {"since": "2026-01-01T00:00"}),
    ]


def console_call(
    client: TestClient, csrf: str, method: str, path: str, form: dict[str, str] | None
) -> Any:
    if method == "get":
        return client.get(path)
    return client.post(path, data={**(form or {}), "csrf_token": csrf})


@pytest.fixture
def admin_key(db: Session, org: Organization) -> dict[str, str]:
    return bearer(factories.make_api_key(db, org))


def role_with(
    db: Session, org: Organization, name: str, permissions: list[str], scope: str
) -> Role:
    role = Role(organization_id=org.id, name=name, scope=scope, builtin=False)
    role.permission_rows = [
        RolePermission(organization_id=org.id, permission=p) for p in permissions
    ]
    db.add(role)
    db.flush()
    return role


def give(db: Session, user: User, role: Role) -> None:
    db.add(UserRole(organization_id=user.organization_id, user_id=user.id, role_id=role.id))
    db.flush()


# Who may reach what


def test_webhooks_manage_over_one_team_is_refused_everywhere(
    client: TestClient, db: Session, org: Organization, admin_key: dict[str, str]
) -> None:
    """Messages carry users of every team: a grant of webhooks.manage scoped to a team, to a
    person or to an API key, reaches no route and no page."""
    made = create(client, admin_key)
    endpoint_id = made["endpoint"]["id"]
    message = add_message(db, int(endpoint_id))
    team = factories.make_team(db, org)
    scoped = role_with(db, org, "Team hooks", ["users.read", "webhooks.manage"], "team")
    person = factories.make_user(db, org, roles=(), team=team)
    give(db, person, scoped)
    key = bearer(factories.make_api_key(db, org, "Team hooks", team=team))
    csrf = factories.login(client, person.email)
    everything = [
        ("get", "/api/v1/webhooks", None),
        ("post", "/api/v1/webhooks", {"url": URL}),
        *routes(endpoint_id, message.id),
    ]
    for who in (key, {"X-CSRF-Token": csrf}):
        for method, path, body in everything:
            answer = client.request(method, path, json=body, headers=who)
            assert answer.status_code == 403, (who, method, path, answer.text)
            assert "over the whole organization" in answer.json()["detail"]
    pages = [
        ("get", CONSOLE, None),
        ("post", CONSOLE, {"url": URL}),
        *console_routes(endpoint_id, message.id),
    ]
    for method, path, form in pages:
        answer = console_call(client, csrf, method, path, form)
        assert answer.status_code == 403, (method, path)
        assert message.body not in answer.text
    client.cookies.clear()
    read = client.get(f"/api/v1/webhooks/{endpoint_id}", headers=admin_key).json()
    assert (read["url"], read["description"], read["enabled"]) == (URL, "", True)
    assert len(client.get("/api/v1/webhooks", headers=admin_key).json()) == 1


def test_a_custom_role_with_webhooks_manage_over_the_organization_is_enough(
    client: TestClient, db: Session, org: Organization
) -> None:
    """webhooks.manage alone, organization-wide, manages webhooks; a key without it cannot
    even list them."""
    role_with(db, org, "Hooks", ["webhooks.manage"], "organization")
    role_with(db, org, "Reader", ["users.read", "audit.read"], "organization")
    hooks = bearer(factories.make_api_key(db, org, "Hooks"))
    reader = bearer(factories.make_api_key(db, org, "Reader"))
    made = create(client, hooks)
    base = f"/api/v1/webhooks/{made['endpoint']['id']}"
    assert client.post(f"{base}/rotate", headers=hooks).status_code == 200
    assert client.post(f"{base}/test", headers=hooks).status_code == 202
    assert client.get(f"{base}/messages", headers=hooks).json()["items"][0]["event_type"] == (
        "webhook.test"
    )
    for method, path, body in [("get", "/api/v1/webhooks", None), *routes(base[17:], 1)]:
        assert client.request(method, path, json=body, headers=reader).status_code == 403


@pytest.fixture
def other_browser(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, base_url="http://testserver", follow_redirects=False) as client:
        yield client


def test_an_impersonating_admin_reads_but_neither_changes_endpoints_nor_sees_a_secret(
    client: TestClient,
    other_browser: TestClient,
    db: Session,
    org: Organization,
    admin_key: dict[str, str],
) -> None:
    """Acting as someone who holds webhooks.manage, an admin may look and send again, but
    may not add, change, pause, delete an endpoint or rotate its secret (as with a password,
    an email or roles): where users' data goes is decided under one's own name."""
    made = create(client, admin_key)
    endpoint_id = made["endpoint"]["id"]
    message = add_message(db, int(endpoint_id), status="failed")
    factories.make_admin(db, org)  # never the last Administrator
    admin = factories.make_admin(db, org, first_name="Bob", last_name="Admin")
    ann = factories.make_user(db, org, first_name="Ann", last_name="Lee", roles=())
    give(db, ann, custom_role(db, org, "Hook keeper", ["users.read", "webhooks.manage"]))
    use_link(other_browser, link_for(client, factories.login(client, admin.email), ann))
    csrf = csrf_of(other_browser)
    headers = {"X-CSRF-Token": csrf}
    base = f"/api/v1/webhooks/{endpoint_id}"
    for method, path, body in [
        ("post", "/api/v1/webhooks", {"url": URL}),
        ("patch", base, {"url": "https://attacker.example.net/"}),
        ("patch", base, {"enabled": False}),
        ("delete", base, None),
        ("post", f"{base}/rotate", None),
    ]:
        answer = other_browser.request(method, path, json=body, headers=headers)
        assert answer.status_code == 403, (method, path, answer.text)
        assert answer.json()["code"] == "impersonation.forbidden"
        assert "while impersonating Ann Lee" in answer.json()["detail"]
        assert "whsec_" not in answer.text
    for path, form in [
        (CONSOLE, {"url": URL}),
        (f"{CONSOLE}/{endpoint_id}", {"url": "https://attacker.example.net/"}),
        (f"{CONSOLE}/{endpoint_id}/pause", {}),
        (f"{CONSOLE}/{endpoint_id}/rotate", {}),
        (f"{CONSOLE}/{endpoint_id}/delete", {"confirm": URL}),
    ]:
        answer = console_call(other_browser, csrf, "post", path, form)
        assert answer.status_code == 403, (path, answer.text)
        assert "whsec_" not in answer.text
    # Looking and sending again are the reader's part.
    assert other_browser.get(base).status_code == 200
    assert other_browser.get(f"{base}/messages/{message.id}").status_code == 200
    assert other_browser.post(f"{base}/test", headers=headers).status_code == 202
    resent = other_browser.post(f"{base}/messages/{message.id}/resend", headers=headers)
    assert resent.status_code == 202
    endpoint = db.get_one(WebhookEndpoint, int(endpoint_id))
    db.refresh(endpoint)
    assert (endpoint.url, endpoint.enabled, endpoint.previous_secret_sealed) == (URL, True, None)
    assert db.scalar(select(func.count()).select_from(WebhookEndpoint)) == 1


def _shape(answer: Any, *ids: object) -> dict[str, Any]:
    """A problem's JSON with the ids in it blanked, to compare two answers."""
    body: dict[str, Any] = answer.json()
    text = orjson.dumps(body).decode()
    for value in ids:
        text = re.sub(rf"\b{value}\b", "ID", text)
    return {"status": answer.status_code, **orjson.loads(text)}


def test_another_organization_s_ids_answer_exactly_as_ids_that_do_not_exist(
    client: TestClient, db: Session, org: Organization, admin_key: dict[str, str]
) -> None:
    """Nothing tells a guessed id of another organization from one never made: the same
    404, code and wording, on every route of the API and every page of the console."""
    other = factories.make_organization(db)
    theirs = create(client, bearer(factories.make_api_key(db, other)))["endpoint"]["id"]
    their_message = add_message(db, int(theirs))
    mine = create(client, admin_key)["endpoint"]["id"]
    missing = int(theirs) + 1000
    for (method, path, body), (_, never_made, _) in zip(
        routes(theirs, their_message.id), routes(missing, their_message.id + 1000), strict=True
    ):
        found = client.request(method, path, json=body, headers=admin_key)
        never = client.request(method, never_made, json=body, headers=admin_key)
        assert found.status_code == 404, (method, path, found.text)
        assert _shape(found, theirs, their_message.id) == _shape(
            never, missing, their_message.id + 1000
        )
    # Another endpoint's message under one's own endpoint: not found, like a missing one.
    crossed = client.get(f"/api/v1/webhooks/{mine}/messages/{their_message.id}", headers=admin_key)
    absent = client.get(f"/api/v1/webhooks/{mine}/messages/{missing}", headers=admin_key)
    for answer, message_id in ((crossed, their_message.id), (absent, missing)):
        assert answer.status_code == 404
        assert answer.json()["code"] == "webhook.message_not_found"
        assert answer.json()["detail"] == f"No message {message_id} for webhook endpoint {mine}."

    client.cookies.clear()
    csrf = factories.login(client, factories.make_admin(db, org).email)
    for method, path, form in console_routes(theirs, their_message.id):
        answer = console_call(client, csrf, method, path, form)
        assert answer.status_code == 404, (method, path)
        assert their_message.uid not in answer.text
    stored = db.get_one(WebhookEndpoint, int(theirs))
    db.refresh(stored)
    assert (stored.url, stored.enabled, stored.previous_secret_sealed) == (URL, True, None)
    db.refresh(their_message)
    assert their_message.status == "delivered"


# What an answer gives away


def test_the_secret_shows_on_the_answer_that_makes_it_and_nowhere_else(
    client: TestClient,
    db: Session,
    org: Organization,
    admin_key: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Not in a log line, an audit row, a page, an error, nor the answers that follow."""
    caplog.set_level(logging.DEBUG)
    made = create(client, admin_key)
    endpoint_id = made["endpoint"]["id"]
    base = f"/api/v1/webhooks/{endpoint_id}"
    rotated = client.post(f"{base}/rotate", headers=admin_key).json()["secret"]
    csrf = factories.login(client, factories.make_admin(db, org).email)
    page = client.post(f"{CONSOLE}/{endpoint_id}/rotate", data={"csrf_token": csrf})
    shown = re.search(r'value="(whsec_[^"]+)"', page.text)
    assert shown is not None
    secrets = [made["secret"], rotated, shown.group(1)]
    client.post(f"{base}/test", headers=admin_key)
    seen = [
        client.get("/api/v1/webhooks", headers=admin_key).text,
        client.get(base, headers=admin_key).text,
        client.get(f"{base}/messages", headers=admin_key).text,
        client.patch(base, json={"url": "ftp://x"}, headers=admin_key).text,  # an error
        client.get("/api/v1/audit", headers=admin_key).text,
        client.get(CONSOLE).text,
        client.get(f"{CONSOLE}/{endpoint_id}").text,
        client.get("/console/audit").text,
        caplog.text,
        orjson.dumps([e.changes for e in db.scalars(select(AuditEvent))]).decode(),
        orjson.dumps([m.body for m in db.scalars(select(WebhookMessage))]).decode(),
    ]
    for secret in secrets:
        for where, text in enumerate(seen):
            assert secret not in text, where
            assert secret.removeprefix("whsec_")[:20] not in text, where
    assert page.headers["cache-control"] == "no-store"


# Bad input: a 400 naming the field and the value, never a 500


@pytest.mark.parametrize(
    ("body", "field", "named"),
    [
        ({"url": ""}, "url", "required"),
        ({"url": "   "}, "url", "spaces"),
        ({"url": "https://"}, "url", "no host"),
        ({"url": "https:///path"}, "url", "no host"),
        ({"url": "https://hooks .example.com/"}, "url", "spaces"),
        ({"url": "https://hooks.example.com/a b"}, "url", "spaces"),
        ({"url": "https://hooks.example.com:99999/"}, "url", "out of range"),
        ({"url": "https://hooks.example.com:-1/"}, "url", "hooks.example.com:-1"),
        ({"url": "https://hooks.example.com:http/"}, "url", "hooks.example.com:http"),
        ({"url": "https://hooks.example.com:0/"}, "url", "port 0"),
        ({"url": "https://[::1"}, "url", "[::1"),
        ({"url": "https://[::1]/h"}, "url", "loopback"),
        ({"url": "https://[fd00:ec2::254]/"}, "url", "metadata"),
        ({"url": "https://[::ffff:10.0.0.1]/"}, "url", "private"),
        ({"url": "https://127.0.0.1/h"}, "url", "loopback"),
        ({"url": "https://127.1/h"}, "url", "127.0.0.1 is a loopback"),
        ({"url": "https://2130706433/h"}, "url", "127.0.0.1 is a loopback"),
        ({"url": "https://10.1.2.3/h"}, "url", "private"),
        ({"url": "https://169.254.169.254/latest/meta-data"}, "url", "metadata"),
        ({"url": "https://localhost:8443/h"}, "url", "loopback name"),
        ({"url": "https://☃.example.com/"}, "url", "☃.example.com"),
        ({"url": "https://exa\u200bmple.com/"}, "url", "IDNA"),
        ({"url": "javascript:alert(1)"}, "url", "https://"),
        ({"url": "https://hooks.example.com/\x00"}, "url", "NUL"),
        ({"url": "https://hooks.example.com/\x7f"}, "url", "control"),
        ({"url": 5}, "url", "string"),
        ({"url": None}, "url", "string"),
        ({}, "url", "required"),
        ({"url": URL, "description": "x" * 100_000}, "description", "100,000 characters"),
        ('{"url": "https://h.example.com", "description": "\\ud800"}', "description", "surrogate"),
        ('{"url": "https://hooks.example.com/\\udfff"}', "url", "surrogate"),
        ({"url": URL, "event_types": ["user.disabled"] * 10_000}, "event_types", "10,000"),
        ({"url": URL, "event_types": ["x" * 10_000]}, "event_types", "x" * 80 + "…"),
        ({"url": URL, "event_types": [""]}, "event_types", "''"),
        ({"url": URL, "event_types": ["USER.DISABLED"]}, "event_types", "USER.DISABLED"),
        ({"url": URL, "event_types": "user.disabled"}, "event_types", "list"),
        ({"url": URL, "event_types": [5]}, "event_types.0", "string"),
        ({"url": URL, "event_types": None}, "event_types", "list"),
        ({"url": URL, "enabled": "no"}, "enabled", "boolean"),
        ({"url": URL, "enabled": 0}, "enabled", "boolean"),
    ],
)
def test_a_bad_endpoint_is_a_400_naming_the_field(
    client: TestClient,
    admin_key: dict[str, str],
    body: dict[str, Any] | str,
    field: str,
    named: str,
) -> None:
    if isinstance(body, str):  # JSON that no client library writes: a lone surrogate
        json_type = {**admin_key, "Content-Type": "application/json"}
        answer = client.post("/api/v1/webhooks", content=body, headers=json_type)
    else:
        answer = client.post("/api/v1/webhooks", json=body, headers=admin_key)
    errors = errors_of(answer)
    assert named in errors.get(field, ""), errors
    assert len(answer.text) < 20_000  # a huge value is not sent back whole
    assert client.get("/api/v1/webhooks", headers=admin_key).json() == []


@pytest.mark.parametrize(
    "url",
    [
        "https://bücher.example/hooks",  # IDN
        "https://xn--bcher-kva.example/hooks",
        "HTTPS://HOOKS.EXAMPLE.COM/Userdesk",
        "https://[2606:4700:4700::1111]:8443/hooks",  # a public IPv6 literal
        "https://8.8.8.8/hooks",
        "https://hooks.example.com/h?token=a%20b&x=%00",  # percent-encoded: sent as given
    ],
)
def test_unusual_but_good_urls_are_taken_as_given(
    client: TestClient, admin_key: dict[str, str], url: str
) -> None:
    assert create(client, admin_key, url=url)["endpoint"]["url"] == url


def test_private_addresses_are_taken_where_the_setting_allows_them(
    app: FastAPI, client: TestClient, settings: Settings, admin_key: dict[str, str]
) -> None:
    app.state.settings = settings.__class__(**{**settings.__dict__, "webhooks_allow_private": True})
    for url in ("http://localhost:8080/h", "https://[::1]:9/h", "http://10.0.0.7/h"):
        assert create(client, admin_key, url=url)["endpoint"]["url"] == url


def _cursor(values: list[Any], name: str = "webhook_messages") -> str:
    return base64.urlsafe_b64encode(json.dumps([name, values]).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("limit=-1", "limit"),
        ("limit=abc", "limit"),
        ("limit=" + "9" * 40, "limit"),
        ("status=lost", "status"),
        ("status=", "status"),
        ("status=" + "x" * 20_000, "status"),
        ("event_type=", "event_type"),
        ("event_type=" + "x" * 65, "event_type"),
        ("event_type=" + "x" * 20_000, "event_type"),
        ("event_type=user.exploded", "event_type"),
        ("cursor=nonsense", "cursor"),
        ("cursor=" + "A" * 20_000, "cursor"),
        ("cursor=%F0%9F%92%A5", "cursor"),
        ("cursor=" + _cursor([2**64]), "cursor"),
        ("cursor=" + _cursor(["1"]), "cursor"),
        ("cursor=" + _cursor([1, 2]), "cursor"),
        ("cursor=" + _cursor([1], name="users"), "cursor"),
        ("cursor=" + base64.urlsafe_b64encode(b"\xff\xfe").decode(), "cursor"),
    ],
)
def test_a_bad_filter_or_cursor_is_a_400_naming_the_parameter(
    client: TestClient, admin_key: dict[str, str], query: str, field: str
) -> None:
    endpoint_id = create(client, admin_key)["endpoint"]["id"]
    answer = client.get(f"/api/v1/webhooks/{endpoint_id}/messages?{query}", headers=admin_key)
    assert field in errors_of(answer), answer.text
    assert len(answer.text) < 20_000


@pytest.mark.parametrize(
    "since",
    [
        "",
        "yesterday",
        "2026-13-01T00:00:00Z",
        "2026-02-30T00:00:00Z",
        "2026-01-01T25:00:00Z",
        "2026-01-01T00:00:00+25:00",
        "2026-01-01T00:00:00 Europe/Paris",
        "0001-01-01T00:00:00+01:00",  # before the first UTC moment
        "9999-12-31T23:59:59-01:00",  # after the last one
        "9999-12-31T23:59:59Z",  # the future
        "2026-01-01T00:00:00Z" + "0" * 100_000,
        12,
        None,
        True,
        ["2026-01-01T00:00:00Z"],
    ],
)
def test_a_bad_moment_to_replay_from_is_a_400_naming_since(
    client: TestClient, admin_key: dict[str, str], since: Any
) -> None:
    endpoint_id = create(client, admin_key)["endpoint"]["id"]
    answer = client.post(
        f"/api/v1/webhooks/{endpoint_id}/replay", json={"since": since}, headers=admin_key
    )
    assert "since" in errors_of(answer), answer.text


@pytest.mark.parametrize(
    "since",
    [
        "0001-01-01T00:00:00Z",
        "2026-01-01T00:00:00+14:00",
        "2026-01-01 00:00",
        "2026-01-01T00:00:00.123456-09:30",
    ],
)
def test_odd_but_valid_moments_to_replay_from_are_taken(
    client: TestClient, admin_key: dict[str, str], since: str
) -> None:
    endpoint_id = create(client, admin_key)["endpoint"]["id"]
    answer = client.post(
        f"/api/v1/webhooks/{endpoint_id}/replay", json={"since": since}, headers=admin_key
    )
    assert answer.status_code == 202, answer.text


@pytest.mark.parametrize(
    "bad_id", ["abc", "0", "-1", "1.5", "1e3", "9223372036854775808", "9" * 40, "%20", "0x10"]
)
def test_an_id_that_is_not_one_is_a_400_on_every_route(
    client: TestClient, db: Session, org: Organization, admin_key: dict[str, str], bad_id: str
) -> None:
    endpoint_id = create(client, admin_key)["endpoint"]["id"]
    message = add_message(db, int(endpoint_id))
    calls = routes(bad_id, message.id) + routes(endpoint_id, bad_id)[6:8]
    for method, path, body in calls:
        answer = client.request(method, path, json=body, headers=admin_key)
        assert answer.status_code == 400, (method, path, answer.text)
    csrf = factories.login(client, factories.make_admin(db, org).email)
    for method, path, form in (
        console_routes(bad_id, message.id) + console_routes(endpoint_id, bad_id)[7:9]
    ):
        answer = console_call(client, csrf, method, path, form)
        assert answer.status_code in (400, 404), (method, path, answer.status_code)
        assert answer.status_code != 500


@pytest.mark.parametrize(
    ("form", "named"),
    [
        ({"since": ""}, "since"),
        ({"since": "0001-01-01T00:00+01:00"}, "out of range"),
        ({"since": "9999-12-31T23:59"}, "future"),
        ({"since": "2026-01-01T00:00+25:00"}, "since"),
        ({"since": "x" * 100_000}, "since"),
    ],
)
def test_the_console_names_a_bad_moment_to_replay_from(
    client: TestClient,
    db: Session,
    org: Organization,
    admin_key: dict[str, str],
    form: dict[str, str],
    named: str,
) -> None:
    endpoint_id = create(client, admin_key)["endpoint"]["id"]
    csrf = factories.login(client, factories.make_admin(db, org).email)
    answer = client.post(f"{CONSOLE}/{endpoint_id}/replay", data={**form, "csrf_token": csrf})
    assert answer.status_code == 400
    assert named in answer.text
    assert len(answer.text) < 150_000


def test_the_console_survives_bad_filters_and_forms(
    client: TestClient, db: Session, org: Organization, admin_key: dict[str, str]
) -> None:
    endpoint_id = create(client, admin_key)["endpoint"]["id"]
    csrf = factories.login(client, factories.make_admin(db, org).email)
    page = f"{CONSOLE}/{endpoint_id}"
    for query in ("status=lost", "event_type=" + "x" * 500, "cursor=" + "A" * 5000, "limit=abc"):
        answer = client.get(f"{page}?{query}")
        assert answer.status_code in (200, 400), (query, answer.status_code)
    for form in (
        {"url": "https://[::1"},
        {"url": "https://hooks.example.com:99999/"},
        {"url": URL, "event_types": ["user.disabled"] * 10_000},
        {"url": URL, "description": "d" * 10_000},
    ):
        for path in (CONSOLE, page):
            answer = client.post(path, data={**form, "csrf_token": csrf})
            assert answer.status_code == 400, (path, form.keys(), answer.status_code)
    assert client.get(f"{page}?done=replayed&replayed=" + "9" * 50).status_code == 200


# Two requests at once, and the cap


@pytest.fixture
def two_processes(engine: Engine) -> Iterator[tuple[Database, Database, int]]:
    """Two Databases on one committed database, as two server processes are (each its own
    writers' queue), and an organization of the test's own, deleted afterwards."""
    first, second = Database(engine), Database(engine)
    with first.unit_of_work() as db:
        org = organizations.create_organization(
            db, slug=f"webhook-races-{os.urandom(4).hex()}", name="Webhook races"
        )
        org_id = org.id
    yield first, second, org_id
    with first.unit_of_work() as db:
        db.execute(delete(Organization).where(Organization.id == org_id))


def race(first: Database, second: Database, work: Callable[[Session], T]) -> list[T | Exception]:
    """FIRST does WORK and keeps its transaction open while SECOND starts WORK too; then
    FIRST commits and SECOND goes on. What each did (or raised), in that order."""
    results: dict[int, T | Exception] = {}
    done_first, release = threading.Event(), threading.Event()

    def run(which: int, database: Database) -> None:
        try:
            if which == 1:
                with database.unit_of_work() as db:
                    results[1] = work(db)
                    done_first.set()
                    release.wait(20)
            else:
                done_first.wait(20)
                with database.unit_of_work() as db:
                    results[2] = work(db)
        except Exception as exc:  # the caller looks at it
            results[which] = exc
            done_first.set()

    threads = [threading.Thread(target=run, args=(n, d)) for n, d in ((1, first), (2, second))]
    for thread in threads:
        thread.start()
    assert done_first.wait(20)
    time.sleep(0.5)  # the second is waiting for the first's lock by now
    release.set()
    for thread in threads:
        thread.join(30)
    return [results[1], results[2]]


def test_two_rotations_at_once_keep_both_secrets_verifying(
    two_processes: tuple[Database, Database, int], settings: Settings
) -> None:
    """The second rotation keeps the first's secret as the previous one: each admin's
    answered secret verifies (the later one in force, the earlier one for the grace)."""
    first, second, org_id = two_processes
    actor = system_actor(org_id, "tests")
    with first.unit_of_work() as db:
        made = webhooks.create_endpoint(
            db, actor=actor, settings=settings, data=WebhookEndpointCreate(url=URL)
        )
        endpoint_id = made.endpoint.id

    def rotate(db: Session) -> str:
        return webhooks.rotate_secret(
            db, actor=actor, settings=settings, endpoint_id=endpoint_id
        ).secret

    one, two = race(first, second, rotate)
    assert isinstance(one, str), one
    assert isinstance(two, str), two
    with first.unit_of_work(write=False) as db:
        stored = db.get_one(WebhookEndpoint, endpoint_id)
        assert stored.previous_secret_sealed is not None
        current = signing.unseal_secret(settings, stored.secret_sealed, org_id)
        previous = signing.unseal_secret(settings, stored.previous_secret_sealed, org_id)
        rotations = db.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(
                AuditEvent.action == "webhook.secret_rotated", AuditEvent.organization_id == org_id
            )
        )
    assert (current, previous) == (two, one)
    assert rotations == 2


def test_two_creates_at_once_at_the_cap_make_one_endpoint(
    two_processes: tuple[Database, Database, int], settings: Settings
) -> None:
    first, second, org_id = two_processes
    actor = system_actor(org_id, "tests")
    with first.unit_of_work() as db:
        db.add_all(
            WebhookEndpoint(
                organization_id=org_id, url=URL, description="", event_types=[], secret_sealed="x"
            )
            for _ in range(ENDPOINTS_MAX - 1)
        )

    def add(db: Session) -> int:
        data = WebhookEndpointCreate(url=URL)
        return webhooks.create_endpoint(db, actor=actor, settings=settings, data=data).endpoint.id

    one, two = race(first, second, add)
    assert isinstance(one, int), one
    assert isinstance(two, Conflict), two
    assert two.code == "webhook.too_many"
    with first.unit_of_work(write=False) as db:
        count = db.scalar(
            select(func.count())
            .select_from(WebhookEndpoint)
            .where(WebhookEndpoint.organization_id == org_id)
        )
    assert count == ENDPOINTS_MAX


def test_an_organization_has_at_most_fifty_endpoints(
    client: TestClient, db: Session, org: Organization, admin_key: dict[str, str]
) -> None:
    db.add_all(
        WebhookEndpoint(
            organization_id=org.id, url=URL, description="", event_types=[], secret_sealed="x"
        )
        for _ in range(ENDPOINTS_MAX)
    )
    db.flush()
    refused = client.post("/api/v1/webhooks", json={"url": URL}, headers=admin_key)
    assert refused.status_code == 409, refused.text
    assert refused.json()["code"] == "webhook.too_many"
    assert "(50)" in refused.json()["detail"]
    csrf = factories.login(client, factories.make_admin(db, org).email)
    page = client.post(CONSOLE, data={"url": URL, "csrf_token": csrf, "description": "kept"})
    assert page.status_code == 409
    assert "the most it may have (50)" in page.text
    assert 'value="kept"' in page.text
    # Another organization is not held back by this one's.
    other = factories.make_organization(db)
    create(client, bearer(factories.make_api_key(db, other)))


def _outcome(target: delivery.Claimed, code: int | None) -> delivery.Outcome:
    return delivery.Outcome(
        target=delivery.Target(
            message_id=target.id,
            organization_id=target.organization_id,
            endpoint_id=target.endpoint_id,
            uid=target.uid,
            url=URL,
            body=target.body,
            secrets=("whsec_x",),
        ),
        at=utcnow(),
        status_code=code,
        duration_ms=3,
        response="ok" if code else None,
        error=None if code else "connection refused",
        retry_after=None,
    )


@pytest.mark.parametrize("answered", [200, None])
def test_a_resend_while_a_worker_sends_the_message_sends_it_again(
    client: TestClient,
    db: Session,
    settings: Settings,
    admin_key: dict[str, str],
    answered: int | None,
) -> None:
    """The worker's outcome, delivered or failed, does not undo the resend made meanwhile:
    the message is pending again, its schedule whole, and the next claim takes it."""
    endpoint_id = int(create(client, admin_key)["endpoint"]["id"])
    message = add_message(db, endpoint_id, status="pending")
    message.attempts = 3
    message.next_attempt_at = utcnow() - timedelta(seconds=1)
    db.flush()
    (claimed,) = delivery.claim(db, "worker-1", utcnow())
    resent = client.post(
        f"/api/v1/webhooks/{endpoint_id}/messages/{message.id}/resend", headers=admin_key
    )
    assert resent.status_code == 202
    delivery.record(db, "worker-1", [_outcome(claimed, answered)], settings)
    db.refresh(message)
    assert (message.status, message.attempts, message.locked_by) == ("pending", 0, None)
    assert db.scalar(select(func.count()).select_from(WebhookAttempt)) == 1  # kept all the same
    assert [c.id for c in delivery.claim(db, "worker-2", utcnow() + timedelta(seconds=1))] == [
        message.id
    ]


def test_deleting_an_endpoint_while_its_messages_are_sent_harms_no_worker(
    client: TestClient, db: Session, settings: Settings, admin_key: dict[str, str]
) -> None:
    """The messages and attempts go with the endpoint; the worker's outcome for one of them,
    coming after, is dropped without an error, and it goes on with the others."""
    gone = int(create(client, admin_key)["endpoint"]["id"])
    kept = int(create(client, admin_key)["endpoint"]["id"])
    messages = [add_message(db, e, status="pending", user_id=None) for e in (gone, gone, kept)]
    for message in messages:
        message.next_attempt_at = utcnow() - timedelta(seconds=1)
    db.flush()
    claimed = delivery.claim(db, "worker-1", utcnow())
    assert len(claimed) == 3
    assert client.delete(f"/api/v1/webhooks/{gone}", headers=admin_key).status_code == 204
    delivery.record(db, "worker-1", [_outcome(c, 200) for c in claimed], settings)
    db.expire_all()
    left = db.scalars(select(WebhookMessage)).all()
    assert [(m.endpoint_id, m.status) for m in left] == [(kept, "delivered")]
    attempts = db.scalars(select(WebhookAttempt)).all()
    assert [a.endpoint_id for a in attempts] == [kept]


def test_test_events_do_not_pile_up(
    client: TestClient, db: Session, org: Organization, admin_key: dict[str, str]
) -> None:
    """A few test events wait at most: Userdesk is no machine to post to any address at
    will. Once they are sent, testing goes on."""
    endpoint_id = create(client, admin_key)["endpoint"]["id"]
    url = f"/api/v1/webhooks/{endpoint_id}/test"
    for _ in range(webhooks.TESTS_WAITING_MAX):
        assert client.post(url, headers=admin_key).status_code == 202
    refused = client.post(url, headers=admin_key)
    assert refused.status_code == 409
    assert refused.json()["code"] == "webhook.tests_waiting"
    csrf = factories.login(client, factories.make_admin(db, org).email)
    page = client.post(f"{CONSOLE}/{endpoint_id}/test", data={"csrf_token": csrf})
    assert page.status_code == 409
    assert "test events wait to be sent" in page.text
    db.execute(
        update(WebhookMessage)
        .where(WebhookMessage.endpoint_id == int(endpoint_id))
        .values(status="delivered")
    )
    assert client.post(url, headers=admin_key).status_code == 202
