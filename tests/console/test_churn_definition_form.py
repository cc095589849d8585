"""The Settings page's form of what churn means: saved through the same service as PUT
/api/v1/churn/definition, audited, its refusals shown beside their field."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests import factories
from userdesk.audit.models import AuditEvent
from userdesk.churn import definition
from userdesk.organizations.models import Organization

CANCELLED = {
    "kind": "event",
    "days": "45",
    "activity_types": "",
    "event_type": "subscription.cancelled",
    "scope_type": "login",
    "scope_days": "60",
}


def test_the_form_round_trips_an_event_churn_and_is_audited(
    client: TestClient, db: Session, org: Organization
) -> None:
    csrf = factories.login(client, factories.make_admin(db, org).email)
    page = client.get("/console/settings")
    assert 'data-testid="churn-definition"' in page.text
    assert 'name="kind" value="inactivity" checked' in page.text  # the default
    saved = client.post("/console/settings/churn", data={**CANCELLED, "csrf_token": csrf})
    assert saved.status_code == 303, saved.text
    db.refresh(org)
    assert org.settings[definition.SETTING] == {
        "kind": "event",
        "days": 45,
        "event_type": "subscription.cancelled",
        "activity_types": [],
        "scope_type": "login",
        "scope_days": 60,
    }
    event = db.scalars(
        select(AuditEvent)
        .where(AuditEvent.action == "organization.settings_changed")
        .order_by(AuditEvent.id.desc())
    ).first()
    assert event is not None
    assert event.changes[definition.SETTING]["event_type"] == "subscription.cancelled"
    again = client.get("/console/settings").text
    assert 'name="kind" value="event" checked' in again
    assert 'value="subscription.cancelled"' in again
    assert "The chance that subscription.cancelled happens in the next 45 days" in again
    api = client.get("/api/v1/churn/definition").json()
    assert (api["kind"], api["days"], api["scope_type"]) == ("event", 45, "login")


def test_inactivity_of_chosen_types_round_trips(
    client: TestClient, db: Session, org: Organization
) -> None:
    csrf = factories.login(client, factories.make_admin(db, org).email)
    form = {
        **CANCELLED,
        "kind": "inactivity",
        "days": "30",
        "activity_types": "login, post.created",
        "scope_type": "",
    }
    assert (
        client.post("/console/settings/churn", data={**form, "csrf_token": csrf}).status_code == 303
    )
    db.refresh(org)
    saved = org.settings[definition.SETTING]
    assert (saved["kind"], saved["activity_types"], saved["event_type"]) == (
        "inactivity",
        ["login", "post.created"],
        None,
    )
    assert 'value="login, post.created"' in client.get("/console/settings").text


@pytest.mark.parametrize(
    ("change", "field", "says"),
    [
        ({"event_type": ""}, "event_type", "missing for an event churn"),
        ({"days": "0"}, "days", "0 is not from 1 to 365"),
        ({"days": "a month"}, "days", "is not a whole number of days"),
        ({"scope_days": "400"}, "scope_days", "400 is not from 1 to 365"),
        ({"event_type": "cancelled subscription"}, "event_type", "is not an event type"),
        ({"kind": "rage-quit"}, "kind", "is neither inactivity nor event"),
    ],
)
def test_a_refused_definition_shows_why_beside_its_field_and_saves_nothing(
    client: TestClient,
    db: Session,
    org: Organization,
    change: dict[str, str],
    field: str,
    says: str,
) -> None:
    csrf = factories.login(client, factories.make_admin(db, org).email)
    page = client.post("/console/settings/churn", data={**CANCELLED, **change, "csrf_token": csrf})
    assert page.status_code == 400
    error = page.text.split(f'data-testid="churn-{field}-error">', 1)[1].split("</div>", 1)[0]
    assert says in error
    for name, value in change.items():
        if value and name != "kind":
            assert f'value="{value}"' in page.text  # what was sent, kept to correct
    db.refresh(org)
    assert definition.SETTING not in org.settings


def test_without_settings_manage_there_is_no_form_and_no_save(
    client: TestClient, db: Session, org: Organization
) -> None:
    agent = factories.make_user(db, org, roles=("Agent",))
    csrf = factories.login(client, agent.email)
    assert 'data-testid="churn-definition"' not in client.get("/console/settings").text
    refused = client.post("/console/settings/churn", data={**CANCELLED, "csrf_token": csrf})
    assert refused.status_code == 403
    db.refresh(org)
    assert definition.SETTING not in org.settings
