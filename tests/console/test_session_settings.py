"""The console's Settings page sets how long sessions last and whether end users may keep one."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests import factories
from userdesk.audit.models import AuditEvent
from userdesk.organizations.models import Organization

FORM = {"invitation_ttl_days": "7", "churn_medium": "30", "churn_high": "60"}
SESSIONS = {
    "session_idle_minutes": "15",
    "session_max_minutes": "480",
    "keep_signed_in": "true",
    "keep_signed_in_idle_minutes": "10080",
    "keep_signed_in_max_minutes": "20160",
}


def test_the_settings_page_shows_the_session_limits_and_saves_them(
    client: TestClient, db: Session, org: Organization
) -> None:
    """The defaults show (30 and 600 minutes); a save stores every limit and is audited."""
    csrf = factories.login(client, factories.make_admin(db, org).email)
    page = client.get("/console/settings")
    assert 'data-testid="session-settings"' in page.text
    assert 'name="session_idle_minutes"\n               value="30"' in page.text
    assert 'name="session_max_minutes"\n               value="600"' in page.text
    saved = client.post("/console/settings", data={**FORM, **SESSIONS, "csrf_token": csrf})
    assert saved.status_code == 303, saved.text
    db.refresh(org)
    assert {k: org.settings[k] for k in SESSIONS} == {
        "session_idle_minutes": 15,
        "session_max_minutes": 480,
        "keep_signed_in": True,
        "keep_signed_in_idle_minutes": 10080,
        "keep_signed_in_max_minutes": 20160,
    }
    event = db.scalars(
        select(AuditEvent)
        .where(AuditEvent.action == "organization.settings_changed")
        .order_by(AuditEvent.id.desc())
    ).first()
    assert event is not None
    assert event.changes["session_idle_minutes"] == 15
    assert 'name="keep_signed_in" value="true" checked' in client.get("/console/settings").text


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("session_idle_minutes", "half an hour", "is not a whole number of minutes"),
        ("session_max_minutes", "9" * 5000, "is not a whole number of minutes"),
        ("session_max_minutes", "0", "0 is not between 5 and 10080 minutes"),
        ("keep_signed_in_idle_minutes", "-1", "-1 is not between 5 and 129600 minutes"),
        ("session_idle_minutes", "900", "longer than the 600 minutes a session may last"),
    ],
)
def test_a_bad_session_limit_is_named_next_to_its_field_and_nothing_changes(
    client: TestClient, db: Session, org: Organization, field: str, value: str, says: str
) -> None:
    """The page comes back (400) with the problem beside the field; nothing is stored."""
    csrf = factories.login(client, factories.make_admin(db, org).email)
    refused = client.post("/console/settings", data={**FORM, field: value, "csrf_token": csrf})
    assert refused.status_code == 400
    assert f'data-testid="{field}-error"' in refused.text
    assert says in refused.text
    db.refresh(org)
    assert field not in org.settings


def test_a_nul_in_a_session_limit_is_a_400_naming_the_field(
    client: TestClient, db: Session, org: Organization
) -> None:
    """A NUL character is refused with the field named, never stored, never a 500."""
    csrf = factories.login(client, factories.make_admin(db, org).email)
    refused = client.post(
        "/console/settings", data={**FORM, "session_max_minutes": "6\x000", "csrf_token": csrf}
    )
    assert refused.status_code == 400
    assert "session_max_minutes" in refused.text
    db.refresh(org)
    assert "session_max_minutes" not in org.settings


def test_a_team_administrator_cannot_change_the_session_limits(
    client: TestClient, db: Session, org: Organization
) -> None:
    """Session limits take settings.manage: a Team Administrator's post is refused."""
    team = factories.make_team(db, org)
    lead = factories.make_user(db, org, roles=("Team Administrator",), team=team)
    csrf = factories.login(client, lead.email)
    refused = client.post(
        "/console/settings", data={**FORM, "session_idle_minutes": "600", "csrf_token": csrf}
    )
    assert refused.status_code == 403
    db.refresh(org)
    assert "session_idle_minutes" not in org.settings
