"""Settings > Webhooks: the endpoints table, adding one (its secret shown once), the
endpoint's page and what it does, its messages and attempts."""

from __future__ import annotations

import html
import json
import re
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests import factories
from userdesk.db.base import utcnow
from userdesk.organizations.models import Organization
from userdesk.webhooks import signing
from userdesk.webhooks.models import WebhookAttempt, WebhookEndpoint, WebhookMessage

BASE = "/console/settings/webhooks"
URL = "https://hooks.example.com/userdesk"


@pytest.fixture
def admin_csrf(client: TestClient, db: Session, org: Organization) -> str:
    return factories.login(client, factories.make_admin(db, org).email)


def add_endpoint(client: TestClient, csrf: str, **fields: object) -> tuple[int, str]:
    """Add an endpoint through the form: its id and the secret the answer shows."""
    answer = client.post(BASE, data={"url": URL, "csrf_token": csrf, **fields})
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"
    found = re.search(r'value="(whsec_[^"]+)" data-testid="webhook-secret"', answer.text)
    assert found, answer.text
    endpoint_id = int(re.search(rf"{BASE}/(\d+)", answer.text).group(1))  # type: ignore[union-attr]
    return endpoint_id, html.unescape(found.group(1))


def test_the_page_is_linked_for_administrators_only(
    client: TestClient, db: Session, org: Organization, admin_csrf: str
) -> None:
    settings = client.get("/console/settings")
    assert f'href="{BASE}"' in settings.text
    page = client.get(BASE)
    assert page.status_code == 200
    assert "No endpoints yet" in page.text
    for name in ("user.disabled", "invitation.accepted", "user.churn_level_changed"):
        assert f'value="{name}"' in page.text  # a box per event type
    assert 'value="webhook.test"' not in page.text  # sent on request only

    client.cookies.clear()
    agent = factories.make_user(db, org, roles=("Agent",))
    factories.login(client, agent.email)
    assert f'href="{BASE}"' not in client.get("/console/users").text
    assert client.get(BASE).status_code == 403


def test_an_endpoint_is_added_and_its_secret_shown_once(
    client: TestClient, db: Session, admin_csrf: str
) -> None:
    endpoint_id, secret = add_endpoint(
        client,
        admin_csrf,
        description="Product access",
        event_types=["user.disabled", "user.trashed"],
    )
    assert secret.startswith("whsec_")
    endpoint = db.get_one(WebhookEndpoint, endpoint_id)
    assert endpoint.event_types == ["user.disabled", "user.trashed"]
    listed = client.get(BASE)
    page = client.get(f"{BASE}/{endpoint_id}")
    for answer in (listed, page):
        assert answer.status_code == 200
        assert URL in answer.text
        assert secret not in answer.text
    assert "Product access" in listed.text
    assert 'data-state="enabled"' in listed.text


def test_a_bad_endpoint_is_shown_again_with_the_field_named(
    client: TestClient, db: Session, admin_csrf: str
) -> None:
    answer = client.post(
        BASE,
        data={"url": "ftp://files.example.com", "description": "kept", "csrf_token": admin_csrf},
    )
    assert answer.status_code == 400
    assert 'data-testid="url-error"' in answer.text
    assert "ftp://files.example.com" in answer.text
    assert 'value="kept"' in answer.text  # nothing typed is lost
    assert db.scalars(select(WebhookEndpoint)).all() == []
    plain = client.post(BASE, data={"url": "http://hooks.example.com", "csrf_token": admin_csrf})
    assert plain.status_code == 400
    assert "plain http" in plain.text


def test_a_form_without_the_csrf_token_is_refused(client: TestClient, admin_csrf: str) -> None:
    assert client.post(BASE, data={"url": URL}).status_code == 403


def test_the_endpoint_page_edits_pauses_resumes_rotates_and_tests(
    client: TestClient, db: Session, admin_csrf: str
) -> None:
    endpoint_id, secret = add_endpoint(client, admin_csrf)
    page = f"{BASE}/{endpoint_id}"
    csrf = {"csrf_token": admin_csrf}

    saved = client.post(
        page, data={**csrf, "url": URL + "/v2", "description": "", "event_types": ["user.banned"]}
    )
    assert saved.status_code == 303
    assert "Saved." in client.get(saved.headers["location"]).text
    endpoint = db.get_one(WebhookEndpoint, endpoint_id)
    db.refresh(endpoint)
    assert (endpoint.url, endpoint.event_types) == (URL + "/v2", ["user.banned"])
    bad = client.post(page, data={**csrf, "url": URL, "event_types": ["user.exploded"]})
    assert bad.status_code == 400
    assert "user.exploded" in bad.text

    assert client.post(f"{page}/pause", data=csrf).status_code == 303
    paused = client.get(page)
    assert 'data-state="disabled"' in paused.text
    assert "Paused by" in paused.text
    refused = client.post(f"{page}/test", data=csrf)
    assert refused.status_code == 409
    assert client.post(f"{page}/resume", data=csrf).status_code == 303

    tested = client.post(f"{page}/test", data=csrf)
    assert tested.status_code == 303
    shown = client.get(tested.headers["location"])
    assert "A test event is on its way" in shown.text
    assert 'data-event-type="webhook.test"' in shown.text

    rotated = client.post(f"{page}/rotate", data=csrf)
    assert rotated.status_code == 200
    new_secret = html.unescape(re.search(r'value="(whsec_[^"]+)"', rotated.text).group(1))  # type: ignore[union-attr]
    assert new_secret != secret
    assert "24 hours" in rotated.text
    after = client.get(page).text
    assert new_secret not in after
    assert 'data-testid="rotation"' in after  # the previous one signs too, until …


def test_delete_asks_for_the_url_typed_again(
    client: TestClient, db: Session, admin_csrf: str
) -> None:
    endpoint_id, _ = add_endpoint(client, admin_csrf)
    page = f"{BASE}/{endpoint_id}"
    wrong = client.post(f"{page}/delete", data={"csrf_token": admin_csrf, "confirm": "yes"})
    assert wrong.status_code == 400
    assert "is not the endpoint&#39;s URL" in wrong.text
    assert db.get(WebhookEndpoint, endpoint_id) is not None
    done = client.post(f"{page}/delete", data={"csrf_token": admin_csrf, "confirm": URL})
    assert done.status_code == 303
    assert "The endpoint is deleted." in client.get(done.headers["location"]).text
    db.expire_all()
    assert db.get(WebhookEndpoint, endpoint_id) is None


def _message(db: Session, endpoint_id: int, status: str, event_type: str) -> WebhookMessage:
    endpoint = db.get_one(WebhookEndpoint, endpoint_id)
    message = WebhookMessage(
        organization_id=endpoint.organization_id,
        uid=signing.new_message_uid(),
        endpoint_id=endpoint_id,
        event_type=event_type,
        user_id=None,
        body=json.dumps({"type": event_type, "data": {"reason": "<b>spam</b>"}}),
        status=status,
        attempts=1,
        next_attempt_at=utcnow() + timedelta(minutes=5),
        created_at=utcnow() - timedelta(hours=1),
    )
    db.add(message)
    db.flush()
    return message


def test_messages_are_filtered_shown_with_attempts_resent_and_replayed(
    client: TestClient, db: Session, admin_csrf: str
) -> None:
    endpoint_id, _ = add_endpoint(client, admin_csrf)
    page = f"{BASE}/{endpoint_id}"
    failed = _message(db, endpoint_id, "failed", "user.disabled")
    delivered = _message(db, endpoint_id, "delivered", "user.banned")
    db.add(
        WebhookAttempt(
            organization_id=failed.organization_id,
            message_id=failed.id,
            endpoint_id=endpoint_id,
            attempted_at=utcnow(),
            status_code=502,
            duration_ms=1234,
            response="upstream <down>",
            error=None,
            outcome="failed",
        )
    )
    db.flush()

    everything = client.get(page).text
    assert f'data-message-id="{failed.id}"' in everything
    assert f'data-message-id="{delivered.id}"' in everything
    only_failed = client.get(page, params={"status": "failed"}).text
    assert f'data-message-id="{failed.id}"' in only_failed
    assert f'data-message-id="{delivered.id}"' not in only_failed
    by_type = client.get(page, params={"event_type": "user.banned"}).text
    assert f'data-message-id="{delivered.id}"' in by_type
    assert f'data-message-id="{failed.id}"' not in by_type
    assert client.get(page, params={"status": "lost"}).status_code == 400

    detail = client.get(f"{page}/messages/{failed.id}")
    assert detail.status_code == 200
    assert "1234 ms" in detail.text
    assert "upstream &lt;down&gt;" in detail.text  # the answer, escaped
    assert "&lt;b&gt;spam&lt;/b&gt;" in detail.text  # the body, escaped
    assert failed.uid in detail.text

    resent = client.post(f"{page}/messages/{delivered.id}/resend", data={"csrf_token": admin_csrf})
    assert resent.status_code == 303
    db.refresh(delivered)
    assert delivered.status == "pending"

    since = (utcnow() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    replayed = client.post(f"{page}/replay", data={"csrf_token": admin_csrf, "since": since})
    assert replayed.status_code == 303
    assert "1 failed message(s) go out again" in client.get(replayed.headers["location"]).text
    db.refresh(failed)
    assert failed.status == "pending"
    bad = client.post(f"{page}/replay", data={"csrf_token": admin_csrf, "since": "yesterday"})
    assert bad.status_code == 400
    assert "yesterday" in bad.text


def test_counts_and_failure_rate_show_in_the_table_and_on_the_page(
    client: TestClient, db: Session, admin_csrf: str
) -> None:
    endpoint_id, _ = add_endpoint(client, admin_csrf)
    for status in ("delivered", "delivered", "failed"):
        message = _message(db, endpoint_id, status, "user.disabled")
        db.add(
            WebhookAttempt(
                organization_id=message.organization_id,
                message_id=message.id,
                endpoint_id=endpoint_id,
                attempted_at=utcnow(),
                status_code=200 if status == "delivered" else 500,
                duration_ms=5,
                outcome=status,
            )
        )
    db.flush()
    for answer in (client.get(BASE), client.get(f"{BASE}/{endpoint_id}")):
        text = answer.text
        assert re.search(r'data-testid="delivered">2<', text), text
        assert re.search(r'data-testid="failed">1<', text)
        assert "33.3%" in text


def test_another_organization_s_endpoint_is_not_found(
    client: TestClient, db: Session, admin_csrf: str
) -> None:
    other = factories.make_organization(db)
    theirs = WebhookEndpoint(
        organization_id=other.id, url=URL, description="", event_types=[], secret_sealed="x"
    )
    db.add(theirs)
    db.flush()
    assert client.get(f"{BASE}/{theirs.id}").status_code == 404
    refused = client.post(f"{BASE}/{theirs.id}/pause", data={"csrf_token": admin_csrf})
    assert refused.status_code == 404
    db.refresh(theirs)
    assert theirs.enabled is True
