"""The registration policy in the console's Settings: saved, validated and audited."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests import factories
from userdesk.access.rules import system_actor
from userdesk.audit.models import AuditEvent
from userdesk.errors import InvalidInput, PermissionDenied
from userdesk.organizations import service as organizations
from userdesk.organizations.models import Organization

FORM = {"invitation_ttl_days": "7", "churn_medium": "30", "churn_high": "60"}


def test_registration_is_closed_by_default(org: Organization) -> None:
    assert organizations.registration_policy(org).value == "closed"
    assert organizations.registration_domains(org) == []


def test_the_settings_page_saves_the_policy_and_the_domains_and_audits_it(
    client: TestClient, db: Session, org: Organization
) -> None:
    admin = factories.make_admin(db, org)
    csrf = factories.login(client, admin.email)
    page = client.get("/console/settings")
    assert 'data-testid="registration-settings"' in page.text
    saved = client.post(
        "/console/settings",
        data={
            **FORM,
            "registration": "domains",
            "registration_domains": "Example.com, @example.org example.com",
            "csrf_token": csrf,
        },
    )
    assert saved.status_code == 303, saved.text
    db.refresh(org)
    assert organizations.registration_policy(org).value == "domains"
    assert organizations.registration_domains(org) == ["example.com", "example.org"]
    event = db.scalars(
        select(AuditEvent)
        .where(AuditEvent.action == "organization.settings_changed")
        .order_by(AuditEvent.id.desc())
    ).first()
    assert event is not None
    assert event.changes["registration"] == "domains"
    assert 'value="example.com, example.org"' in client.get("/console/settings").text


def test_a_bad_domain_is_named_and_nothing_is_saved(
    client: TestClient, db: Session, org: Organization
) -> None:
    admin = factories.make_admin(db, org)
    csrf = factories.login(client, admin.email)
    refused = client.post(
        "/console/settings",
        data={
            **FORM,
            "registration": "domains",
            "registration_domains": "example.com, not a domain!",
            "csrf_token": csrf,
        },
    )
    assert refused.status_code == 400
    assert "&#39;not&#39; is not a domain name" in refused.text
    db.refresh(org)
    assert organizations.registration_policy(org).value == "closed"


def test_domains_without_any_domain_are_refused(db: Session, org: Organization) -> None:
    with pytest.raises(InvalidInput) as empty:
        organizations.update_settings(db, actor=system_actor(org.id), registration="domains")
    assert "registration_domains" in empty.value.fields


def test_an_unknown_policy_or_a_bad_domain_is_named(db: Session, org: Organization) -> None:
    with pytest.raises(InvalidInput) as unknown:
        organizations.update_settings(db, actor=system_actor(org.id), registration="everyone")
    assert unknown.value.fields == {
        "registration": "'everyone' is not one of: closed, open, domains"
    }
    with pytest.raises(InvalidInput) as bad:
        organizations.update_settings(
            db, actor=system_actor(org.id), registration_domains=["exa mple.com"]
        )
    assert "'exa mple.com'" in bad.value.fields["registration_domains"]


def test_a_member_may_not_change_the_registration_policy(db: Session, org: Organization) -> None:
    from userdesk.access import service as access

    member = factories.make_user(db, org)
    with pytest.raises(PermissionDenied):
        organizations.update_settings(
            db, actor=access.actor_for_user(db, member), registration="open"
        )


def test_the_sign_in_page_offers_registration_only_when_it_is_open(
    client: TestClient, db: Session, org: Organization
) -> None:
    assert 'data-testid="signup-link"' not in client.get("/login").text
    org.settings = {**org.settings, "registration": "open"}
    db.flush()
    assert 'data-testid="signup-link"' in client.get("/login").text
