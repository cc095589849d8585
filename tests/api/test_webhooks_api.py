"""/api/v1/webhooks: endpoints, their secret shown once, messages and attempts, resend and
replay; webhooks.manage only; another organization's endpoint is not found."""

from __future__ import annotations

import base64
import dataclasses
import json
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests import factories
from userdesk.audit.models import AuditEvent
from userdesk.config import Settings
from userdesk.db.base import utcnow
from userdesk.organizations.models import Organization
from userdesk.webhooks import catalog, signing
from userdesk.webhooks.models import WebhookAttempt, WebhookEndpoint, WebhookMessage

URL = "https://hooks.example.com/userdesk"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def admin_key(db: Session, org: Organization) -> dict[str, str]:
    return bearer(factories.make_api_key(db, org))


def create(client: TestClient, headers: dict[str, str], **fields: Any) -> dict[str, Any]:
    response = client.post("/api/v1/webhooks", json={"url": URL, **fields}, headers=headers)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def errors_of(response: Any) -> dict[str, str]:
    assert response.status_code == 400, response.text
    return {e["field"]: e["detail"] for e in response.json()["errors"]}


def add_message(
    db: Session,
    endpoint_id: int,
    *,
    status: str = "delivered",
    event_type: str = "user.disabled",
    user_id: int | None = 7,
    age: timedelta = timedelta(0),
) -> WebhookMessage:
    endpoint = db.get_one(WebhookEndpoint, endpoint_id)
    now = utcnow()
    message = WebhookMessage(
        organization_id=endpoint.organization_id,
        uid=signing.new_message_uid(),
        endpoint_id=endpoint.id,
        event_type=event_type,
        user_id=user_id,
        body=json.dumps({"type": event_type, "timestamp": now.isoformat(), "data": {}}),
        status=status,
        attempts=1 if status != "pending" else 0,
        next_attempt_at=now,
        created_at=now - age,
    )
    db.add(message)
    db.flush()
    return message


def add_attempt(
    db: Session, message: WebhookMessage, *, code: int | None, ago: timedelta = timedelta(0)
) -> WebhookAttempt:
    attempt = WebhookAttempt(
        organization_id=message.organization_id,
        message_id=message.id,
        endpoint_id=message.endpoint_id,
        attempted_at=utcnow() - ago,
        status_code=code,
        duration_ms=42,
        response="x" * 1024 if code else None,
        error=None if code else "connection refused",
        outcome="delivered" if code and code < 300 else "failed",
    )
    db.add(attempt)
    db.flush()
    return attempt


def test_an_endpoint_is_created_with_its_secret_shown_once(
    client: TestClient, db: Session, admin_key: dict[str, str]
) -> None:
    """The answer to create holds a whsec_ secret (32 bytes); list and read never do."""
    made = create(
        client,
        admin_key,
        description="Access on the product side",
        event_types=["user.disabled", "user.banned", "user.disabled"],
    )
    secret = made["secret"]
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    endpoint = made["endpoint"]
    assert endpoint["url"] == URL
    assert endpoint["event_types"] == ["user.disabled", "user.banned"]  # each once
    assert endpoint["enabled"] is True
    assert isinstance(endpoint["id"], str)

    listed = client.get("/api/v1/webhooks", headers=admin_key)
    read = client.get(f"/api/v1/webhooks/{endpoint['id']}", headers=admin_key)
    assert [e["id"] for e in listed.json()] == [endpoint["id"]]
    assert read.json()["stats"]["delivered"] == 0
    for answer in (listed, read):
        assert secret not in answer.text
        assert "secret_sealed" not in answer.text
    stored = db.get_one(WebhookEndpoint, int(endpoint["id"]))
    assert secret not in stored.secret_sealed  # sealed, not kept as given


def test_the_audit_log_records_every_change_without_the_secret(
    client: TestClient, db: Session, admin_key: dict[str, str]
) -> None:
    made = create(client, admin_key)
    endpoint_id = made["endpoint"]["id"]
    url = f"/api/v1/webhooks/{endpoint_id}"
    rotated = client.post(f"{url}/rotate", headers=admin_key)
    assert rotated.status_code == 200
    assert rotated.headers["cache-control"] == "no-store"
    client.patch(url, json={"description": "now described"}, headers=admin_key)
    client.post(f"{url}/test", headers=admin_key)
    client.delete(url, headers=admin_key)
    events = db.scalars(
        select(AuditEvent).where(AuditEvent.target_type == "webhook_endpoint")
    ).all()
    assert [e.action for e in events] == [
        "webhook.created",
        "webhook.secret_rotated",
        "webhook.updated",
        "webhook.test_sent",
        "webhook.deleted",
    ]
    written = json.dumps([e.changes for e in events])
    for secret in (made["secret"], rotated.json()["secret"]):
        assert secret not in written
        assert secret.removeprefix("whsec_") not in written
    audit = client.get("/api/v1/audit?action=webhook.", headers=admin_key)
    assert made["secret"] not in audit.text


def test_the_audit_log_keeps_no_token_of_the_url_query(
    client: TestClient, db: Session, admin_key: dict[str, str]
) -> None:
    """Receivers often take a token in the query string: the API shows the URL whole to
    whoever manages webhooks; the audit log, read more widely, keeps it without the query."""
    made = create(client, admin_key, url=f"{URL}?token=s3cr3t-t0ken")
    assert made["endpoint"]["url"] == f"{URL}?token=s3cr3t-t0ken"
    event = db.scalars(select(AuditEvent).where(AuditEvent.target_type == "webhook_endpoint")).one()
    assert "s3cr3t-t0ken" not in json.dumps(event.changes)
    assert f"{URL}?…" in json.dumps(event.changes, ensure_ascii=False)


def test_rotation_answers_a_new_secret_and_keeps_the_old_one_for_a_day(
    client: TestClient, db: Session, settings: Settings, admin_key: dict[str, str]
) -> None:
    made = create(client, admin_key)
    endpoint_id = int(made["endpoint"]["id"])
    rotated = client.post(f"/api/v1/webhooks/{endpoint_id}/rotate", headers=admin_key).json()
    assert rotated["secret"] != made["secret"]
    expires = rotated["endpoint"]["previous_secret_expires_at"]
    assert expires is not None
    stored = db.get_one(WebhookEndpoint, endpoint_id)
    db.refresh(stored)
    org = stored.organization_id
    assert signing.unseal_secret(settings, stored.secret_sealed, org) == rotated["secret"]
    assert stored.previous_secret_sealed is not None
    previous = signing.unseal_secret(settings, stored.previous_secret_sealed, org)
    assert previous == made["secret"]
    assert stored.previous_secret_expires_at is not None
    left = stored.previous_secret_expires_at - utcnow()
    assert timedelta(hours=23, minutes=59) < left <= timedelta(hours=24)


def test_an_endpoint_is_edited_paused_resumed_and_deleted(
    client: TestClient, db: Session, admin_key: dict[str, str]
) -> None:
    made = create(client, admin_key)
    url = f"/api/v1/webhooks/{made['endpoint']['id']}"
    edited = client.patch(
        url,
        json={"url": "https://other.example.com/h", "event_types": ["user.trashed"]},
        headers=admin_key,
    )
    assert edited.status_code == 200, edited.text
    assert edited.json()["url"] == "https://other.example.com/h"
    assert edited.json()["event_types"] == ["user.trashed"]

    paused = client.patch(url, json={"enabled": False}, headers=admin_key).json()
    assert paused["enabled"] is False
    assert paused["disabled_reason"].startswith("Paused by ")
    refused = client.post(f"{url}/test", headers=admin_key)
    assert refused.status_code == 409  # nothing would be delivered

    endpoint = db.get_one(WebhookEndpoint, int(made["endpoint"]["id"]))
    endpoint.failing_since = utcnow() - timedelta(days=1)
    db.flush()
    resumed = client.patch(url, json={"enabled": True}, headers=admin_key).json()
    assert resumed["enabled"] is True
    assert resumed["disabled_reason"] is None
    assert resumed["failing_since"] is None  # the three days count anew

    everything = client.patch(url, json={"event_types": []}, headers=admin_key).json()
    assert everything["event_types"] == []  # every type

    assert client.delete(url, headers=admin_key).status_code == 204
    assert client.get(url, headers=admin_key).status_code == 404


@pytest.mark.parametrize(
    ("fields", "field", "named"),
    [
        ({"url": "ftp://hooks.example.com/x"}, "url", "ftp://hooks.example.com/x"),
        ({"url": "http://hooks.example.com/x"}, "url", "plain http"),
        ({"url": "https://" + "a" * 2000 + ".example.com"}, "url", "2,020 characters"),
        ({"url": "https://me:pw@hooks.example.com/"}, "url", "user name or password"),
        ({"url": "https://hooks.example.com/#part"}, "url", "fragment"),
        ({"url": URL, "description": "x" * 501}, "description", "501 characters"),
        ({"url": URL, "description": "bad\x00text"}, "description", "NUL"),
        ({"url": URL, "event_types": ["user.exploded"]}, "event_types", "user.exploded"),
    ],
)
def test_bad_input_is_a_400_naming_the_field_and_the_value(
    client: TestClient,
    admin_key: dict[str, str],
    fields: dict[str, Any],
    field: str,
    named: str,
) -> None:
    response = client.post("/api/v1/webhooks", json=fields, headers=admin_key)
    errors = errors_of(response)
    assert named in errors[field], errors
    assert client.get("/api/v1/webhooks", headers=admin_key).json() == []


def test_bad_input_on_an_edit_is_named_and_changes_nothing(
    client: TestClient, admin_key: dict[str, str]
) -> None:
    made = create(client, admin_key)
    url = f"/api/v1/webhooks/{made['endpoint']['id']}"
    response = client.patch(
        url, json={"url": "ftp://x.example.com", "event_types": ["nope"]}, headers=admin_key
    )
    errors = errors_of(response)
    assert set(errors) == {"url", "event_types"}
    assert client.get(url, headers=admin_key).json()["url"] == URL


def test_plain_http_is_taken_where_the_setting_allows_private_addresses(
    app: FastAPI, client: TestClient, settings: Settings, admin_key: dict[str, str]
) -> None:
    app.state.settings = dataclasses.replace(settings, webhooks_allow_private=True)
    made = create(client, admin_key, url="http://127.0.0.1:9/hooks")
    assert made["endpoint"]["url"] == "http://127.0.0.1:9/hooks"


@pytest.mark.parametrize("role", ["Agent", "Team Administrator"])
def test_people_and_keys_without_webhooks_manage_are_refused_everywhere(
    client: TestClient, db: Session, org: Organization, admin_key: dict[str, str], role: str
) -> None:
    """An Agent or a Team Administrator (signed in or by API key) gets 403 on every route."""
    made = create(client, admin_key)
    endpoint_id = made["endpoint"]["id"]
    message = add_message(db, int(endpoint_id))
    team = factories.make_team(db, org)
    key = bearer(factories.make_api_key(db, org, role, team=team if "Team" in role else None))
    person = factories.make_user(db, org, roles=(role,), team=team)
    csrf = factories.login(client, person.email)
    base = f"/api/v1/webhooks/{endpoint_id}"
    calls = [
        ("get", "/api/v1/webhooks", None),
        ("post", "/api/v1/webhooks", {"url": URL}),
        ("get", base, None),
        ("patch", base, {"description": "mine"}),
        ("delete", base, None),
        ("post", f"{base}/rotate", None),
        ("post", f"{base}/test", None),
        ("get", f"{base}/messages", None),
        ("get", f"{base}/messages/{message.id}", None),
        ("post", f"{base}/messages/{message.id}/resend", None),
        ("post", f"{base}/replay", {"since": "2026-01-01T00:00:00Z"}),
    ]
    for who in (key, {"X-CSRF-Token": csrf}):
        for method, path, body in calls:
            answer = client.request(method, path, json=body, headers=who)
            assert answer.status_code == 403, (role, method, path, answer.text)
            assert answer.json()["code"] == "permission_denied"
    client.cookies.clear()
    assert client.get(base, headers=admin_key).json()["url"] == URL  # untouched


def test_an_administrator_signed_in_manages_webhooks_with_the_csrf_token(
    client: TestClient, db: Session, org: Organization
) -> None:
    admin = factories.make_admin(db, org)
    csrf = factories.login(client, admin.email)
    without = client.post("/api/v1/webhooks", json={"url": URL})
    assert without.status_code == 403
    made = client.post("/api/v1/webhooks", json={"url": URL}, headers={"X-CSRF-Token": csrf})
    assert made.status_code == 201


def test_another_organization_s_endpoint_and_messages_are_not_found(
    client: TestClient, db: Session, admin_key: dict[str, str]
) -> None:
    other = factories.make_organization(db)
    theirs = create(client, bearer(factories.make_api_key(db, other)))
    endpoint_id = theirs["endpoint"]["id"]
    message = add_message(db, int(endpoint_id))
    base = f"/api/v1/webhooks/{endpoint_id}"
    calls = [
        ("get", base, None),
        ("patch", base, {"description": "mine"}),
        ("delete", base, None),
        ("post", f"{base}/rotate", None),
        ("post", f"{base}/test", None),
        ("get", f"{base}/messages", None),
        ("get", f"{base}/messages/{message.id}", None),
        ("post", f"{base}/messages/{message.id}/resend", None),
        ("post", f"{base}/replay", {"since": "2026-01-01T00:00:00Z"}),
    ]
    for method, path, body in calls:
        answer = client.request(method, path, json=body, headers=admin_key)
        assert answer.status_code == 404, (method, path, answer.text)
    assert client.get("/api/v1/webhooks", headers=admin_key).json() == []
    # A message id of another endpoint under one's own endpoint: not found either.
    mine = create(client, admin_key)["endpoint"]["id"]
    crossed = client.get(f"/api/v1/webhooks/{mine}/messages/{message.id}", headers=admin_key)
    assert crossed.status_code == 404


def test_the_test_event_is_one_message_for_that_endpoint_alone(
    client: TestClient, db: Session, admin_key: dict[str, str]
) -> None:
    """Whatever types it wants, the endpoint gets webhook.test; the other endpoint nothing."""
    made = create(client, admin_key, event_types=["user.banned"])
    create(client, admin_key)  # another, wanting every type
    endpoint_id = made["endpoint"]["id"]
    sent = client.post(f"/api/v1/webhooks/{endpoint_id}/test", headers=admin_key)
    assert sent.status_code == 202, sent.text
    assert sent.json()["event_type"] == "webhook.test"
    assert sent.json()["status"] == "pending"
    assert sent.json()["uid"].startswith("msg_")
    messages = db.scalars(select(WebhookMessage)).all()
    assert [(str(m.endpoint_id), m.event_type) for m in messages] == [(endpoint_id, "webhook.test")]
    body = json.loads(messages[0].body)
    assert body["type"] == "webhook.test"
    assert body["data"] == {
        "endpoint_id": endpoint_id,
        "message": "This is a test event from Userdesk.",
    }


def test_messages_are_listed_newest_first_filtered_and_paged(
    client: TestClient, db: Session, admin_key: dict[str, str]
) -> None:
    endpoint_id = int(create(client, admin_key)["endpoint"]["id"])
    made = [
        add_message(db, endpoint_id, status="delivered", event_type="user.disabled"),
        add_message(db, endpoint_id, status="failed", event_type="user.disabled"),
        add_message(db, endpoint_id, status="pending", event_type="user.banned"),
        add_message(db, endpoint_id, status="failed", event_type="user.banned"),
    ]
    url = f"/api/v1/webhooks/{endpoint_id}/messages"

    def ids(query: str) -> list[int]:
        answer = client.get(url + query, headers=admin_key)
        assert answer.status_code == 200, answer.text
        return [int(m["id"]) for m in answer.json()["items"]]

    assert ids("") == [m.id for m in reversed(made)]
    assert ids("?status=failed") == [made[3].id, made[1].id]
    assert ids("?event_type=user.disabled") == [made[1].id, made[0].id]
    assert ids("?status=failed&event_type=user.banned") == [made[3].id]
    first = client.get(url + "?limit=3", headers=admin_key).json()
    assert len(first["items"]) == 3
    rest = client.get(url + f"?limit=3&cursor={first['next_cursor']}", headers=admin_key).json()
    assert [int(m["id"]) for m in rest["items"]] == [made[0].id]
    assert rest["next_cursor"] is None

    assert "status" in errors_of(client.get(url + "?status=lost", headers=admin_key))
    bad_type = client.get(url + "?event_type=user.exploded", headers=admin_key)
    assert "user.exploded" in errors_of(bad_type)["event_type"]
    assert "cursor" in errors_of(client.get(url + "?cursor=nonsense", headers=admin_key))


def test_a_message_shows_its_body_and_attempts_newest_first(
    client: TestClient, db: Session, admin_key: dict[str, str]
) -> None:
    endpoint_id = int(create(client, admin_key)["endpoint"]["id"])
    message = add_message(db, endpoint_id, status="pending")
    first = add_attempt(db, message, code=None, ago=timedelta(minutes=5))
    second = add_attempt(db, message, code=503)
    message.next_attempt_at = utcnow() + timedelta(minutes=30)
    db.flush()
    answer = client.get(f"/api/v1/webhooks/{endpoint_id}/messages/{message.id}", headers=admin_key)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["uid"] == message.uid
    assert body["payload"]["type"] == "user.disabled"
    assert body["next_attempt_at"] is not None  # the next retry
    attempts = body["attempt_log"]
    assert [a["id"] for a in attempts] == [str(second.id), str(first.id)]
    assert attempts[0]["status_code"] == 503
    assert attempts[0]["duration_ms"] == 42
    assert len(attempts[0]["response"]) == 1024
    assert attempts[1]["status_code"] is None
    assert attempts[1]["error"] == "connection refused"


def test_resend_sets_the_same_message_pending_now_with_the_whole_schedule(
    client: TestClient, db: Session, admin_key: dict[str, str]
) -> None:
    endpoint_id = int(create(client, admin_key)["endpoint"]["id"])
    message = add_message(db, endpoint_id, status="failed")
    message.attempts = 11
    message.next_attempt_at = utcnow() - timedelta(days=2)
    db.flush()
    before = utcnow()
    answer = client.post(
        f"/api/v1/webhooks/{endpoint_id}/messages/{message.id}/resend", headers=admin_key
    )
    assert answer.status_code == 202, answer.text
    assert answer.json()["uid"] == message.uid  # the same webhook-id
    db.refresh(message)
    assert message.status == "pending"
    assert message.attempts == 0
    assert message.next_attempt_at is not None
    assert message.next_attempt_at >= before - timedelta(seconds=1)
    assert db.scalar(select(AuditEvent.action).order_by(AuditEvent.id.desc())) == "webhook.resent"


def test_replay_sends_again_every_failed_message_since_a_moment(
    client: TestClient, db: Session, admin_key: dict[str, str]
) -> None:
    endpoint_id = int(create(client, admin_key)["endpoint"]["id"])
    old = add_message(db, endpoint_id, status="failed", age=timedelta(days=3))
    recent = [add_message(db, endpoint_id, status="failed", age=timedelta(hours=h)) for h in (1, 2)]
    delivered = add_message(db, endpoint_id, status="delivered", age=timedelta(hours=1))
    since = (utcnow() - timedelta(days=1)).isoformat()
    url = f"/api/v1/webhooks/{endpoint_id}/replay"
    answer = client.post(url, json={"since": since}, headers=admin_key)
    assert answer.status_code == 202, answer.text
    assert answer.json() == {"replayed": 2}
    for message in (old, *recent, delivered):
        db.refresh(message)
    assert [m.status for m in recent] == ["pending", "pending"]
    assert old.status == "failed"
    assert delivered.status == "delivered"
    event = db.scalars(select(AuditEvent).order_by(AuditEvent.id.desc())).first()
    assert event is not None
    assert (event.action, event.changes["messages"]) == ("webhook.replayed", 2)

    assert "since" in errors_of(client.post(url, json={"since": 12}, headers=admin_key))
    future = (utcnow() + timedelta(days=1)).isoformat()
    assert (
        "future" in errors_of(client.post(url, json={"since": future}, headers=admin_key))["since"]
    )


def test_counts_and_failure_rates_are_per_endpoint(
    client: TestClient, db: Session, admin_key: dict[str, str]
) -> None:
    endpoint_id = int(create(client, admin_key)["endpoint"]["id"])
    other_id = int(create(client, admin_key)["endpoint"]["id"])
    delivered = add_message(db, endpoint_id, status="delivered")
    add_attempt(db, delivered, code=None, ago=timedelta(hours=2))
    add_attempt(db, delivered, code=200, ago=timedelta(hours=1))
    failed = add_message(db, endpoint_id, status="failed")
    add_attempt(db, failed, code=500, ago=timedelta(days=2))  # not in the last 24 h
    add_message(db, endpoint_id, status="pending")
    add_attempt(db, add_message(db, other_id, status="delivered"), code=204)
    stats = client.get(f"/api/v1/webhooks/{endpoint_id}", headers=admin_key).json()["stats"]
    assert (stats["delivered"], stats["pending"], stats["failed"]) == (1, 1, 1)
    assert (stats["attempts_24h"], stats["failed_attempts_24h"]) == (2, 1)
    assert stats["failure_rate_24h"] == 0.5
    assert (stats["attempts"], stats["failed_attempts"]) == (3, 2)
    assert stats["failure_rate"] == pytest.approx(2 / 3, abs=1e-4)
    listed = {e["id"]: e["stats"] for e in client.get("/api/v1/webhooks", headers=admin_key).json()}
    assert listed[str(other_id)]["failure_rate_24h"] == 0.0
    assert listed[str(endpoint_id)] == stats


def test_the_document_describes_each_event_type_as_a_webhook(client: TestClient) -> None:
    """OpenAPI 3.1's `webhooks`: one POST per catalog type, its body's schema, the headers."""
    document = client.get("/api/v1/openapi.json").json()
    assert document["openapi"].startswith("3.1")
    webhooks = document["webhooks"]
    assert set(webhooks) == set(catalog.EVENT_TYPES)
    assert "webhook.test" in webhooks
    for event_type, item in webhooks.items():
        operation = item["post"]
        assert operation["description"] == catalog.EVENT_TYPES[event_type]
        schema = operation["requestBody"]["content"]["application/json"]["schema"]
        assert "type" in json.dumps(schema)
        assert "$defs" not in json.dumps(schema)
        headers = {p["name"] for p in operation["parameters"] if p["in"] == "header"}
        assert headers == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    banned = webhooks["user.banned"]["post"]["requestBody"]["content"]["application/json"]
    assert "until" in json.dumps(banned["schema"])
    paths = document["paths"]
    assert {"get", "post"} <= set(paths["/api/v1/webhooks"])
    assert {"get", "patch", "delete"} <= set(paths["/api/v1/webhooks/{webhook_id}"])
