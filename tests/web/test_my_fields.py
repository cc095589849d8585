"""/me: the organization's fields a user may edit themselves are a form there; the ones
they may only see are shown; the rest are not on the page; a field required on the
user's own page may not be left empty."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from markupsafe import escape
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests import factories
from userdesk.access.rules import system_actor
from userdesk.audit.models import AuditEvent
from userdesk.errors import PermissionDenied
from userdesk.organizations.models import Organization
from userdesk.users import account, fields
from userdesk.users.field_schemas import UserFieldCreate
from userdesk.users.models import User


def make_field(db: Session, org: Organization, **given: Any) -> None:
    fields.create_field(db, actor=system_actor(org.id, "tests"), data=UserFieldCreate(**given))


def stored(db: Session, user: User) -> dict[str, Any] | None:
    db.expire_all()
    found = db.get(User, user.id)
    assert found is not None
    return found.attributes


def test_a_user_edits_their_own_fields_and_sees_only_what_the_schema_shows(
    client: TestClient, db: Session, org: Organization
) -> None:
    make_field(
        db,
        org,
        key="language",
        label="Language",
        type="choice",
        options=["English", "French"],
        editable_by="self",
        visibility="self",
    )
    make_field(
        db,
        org,
        key="newsletter",
        label="Newsletter",
        type="boolean",
        editable_by="self",
        visibility="self",
    )
    make_field(db, org, key="plan", label="Plan", type="text", visibility="self")
    make_field(db, org, key="risk_note", label="Risk note", type="text")  # admins only
    user = factories.make_user(db, org)
    user.attributes = {"plan": "Pro", "risk_note": "watch"}
    db.flush()
    csrf = factories.login(client, user.email)
    page = client.get("/me").text
    form = page.split('data-testid="details-form"', 1)[1].split("</form>", 1)[0]
    assert 'name="attributes.language"' in form
    assert 'name="attributes.newsletter"' in form
    assert 'name="attributes.plan"' not in form
    assert "Pro" in form  # shown, not editable
    assert "Risk note" not in page
    assert "watch" not in page
    saved = client.post(
        "/me/details",
        data={"csrf_token": csrf, "attributes.language": "french", "attributes.newsletter": "yes"},
        follow_redirects=False,
    )
    assert saved.status_code == 303, saved.text
    assert stored(db, user) == {
        "plan": "Pro",
        "risk_note": "watch",
        "language": "French",
        "newsletter": True,
    }
    audited = db.scalars(
        select(AuditEvent).where(
            AuditEvent.action == "user.updated", AuditEvent.target_id == str(user.id)
        )
    ).one()
    assert audited.changes["attributes"]["to"] == {"language": "French", "newsletter": True}


def test_fields_a_user_may_not_edit_are_refused_by_name(
    client: TestClient, db: Session, org: Organization
) -> None:
    make_field(db, org, key="plan", label="Plan", type="text", visibility="self")
    make_field(
        db,
        org,
        key="seats",
        label="Seats",
        type="number",
        editable_by="self",
        visibility="self",
        validation={"min": 1},
    )
    user = factories.make_user(db, org)
    csrf = factories.login(client, user.email)
    forged = client.post(
        "/me/details",
        data={"csrf_token": csrf, "attributes.plan": "Enterprise", "attributes.seats": "3"},
    )
    # plan is not the user's to send: the form reads only what they may edit.
    assert forged.status_code == 303
    assert stored(db, user) == {"seats": 3}
    bad = client.post("/me/details", data={"csrf_token": csrf, "attributes.seats": "0"})
    assert bad.status_code == 400
    assert 'data-testid="error-attributes.seats"' in bad.text
    assert "0 is less than 1" in bad.text
    assert stored(db, user) == {"seats": 3}
    with pytest.raises(PermissionDenied):  # only the user themself, whatever the adapter
        account.change_own_attributes(
            db, actor=system_actor(org.id, "x"), user=user, values={"seats": 5}
        )


def test_a_field_required_on_the_own_page_may_not_be_left_empty(
    client: TestClient, db: Session, org: Organization
) -> None:
    make_field(
        db,
        org,
        key="company",
        label="Company",
        type="text",
        editable_by="self",
        visibility="self",
        required_on=["self"],
    )
    make_field(
        db,
        org,
        key="nickname",
        label="Nickname",
        type="text",
        editable_by="self",
        visibility="self",
    )
    user = factories.make_user(db, org)
    csrf = factories.login(client, user.email)
    page = client.get("/me").text
    assert 'class="form-label required" for="me-attr-company"' in page
    refused = client.post(
        "/me/details",
        data={"csrf_token": csrf, "attributes.company": "  ", "attributes.nickname": "Al"},
    )
    assert refused.status_code == 400
    assert str(escape("'Company' is required")) in refused.text
    assert 'name="attributes.nickname" value="Al"' in refused.text  # what was typed stays
    assert stored(db, user) is None
    saved = client.post(
        "/me/details",
        data={"csrf_token": csrf, "attributes.company": "Acme", "attributes.nickname": "Al"},
        follow_redirects=False,
    )
    assert saved.status_code == 303
    assert stored(db, user) == {"company": "Acme", "nickname": "Al"}
