"""Custom fields where users are made or edit themselves, on both databases: invitations
carry each person's values (those required on invitation must be there), and a user's
own values (users.account.change_own_attributes) are written with their index rows."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests import factories
from userdesk.access.rules import Actor, system_actor
from userdesk.errors import InvalidInput
from userdesk.organizations.models import Organization
from userdesk.users import account, fields
from userdesk.users.field_schemas import UserFieldCreate
from userdesk.users.models import User, UserFieldValue


def make_field(db: Session, org: Organization, **given: Any) -> None:
    fields.create_field(db, actor=system_actor(org.id, "tests"), data=UserFieldCreate(**given))


def test_an_invitation_holds_each_persons_values_and_requires_those_required(
    client: TestClient, db: Session, org: Organization
) -> None:
    make_field(db, org, key="seats", label="Seats", type="number", required_on=["invitation"])
    make_field(db, org, key="topics", label="Topics", type="choices", options=["a", "b"])
    key = factories.make_api_key(db, org)
    headers = {"Authorization": f"Bearer {key}"}
    refused = client.post(
        "/api/v1/invitations",
        json={
            "people": [
                {"email": "x@example.com", "attributes": {"seats": 3, "topics": ["c"]}},
                {"email": "y@example.com"},
            ],
            "welcome_email": {"send": False},
        },
        headers=headers,
    )
    assert refused.status_code == 400
    named = {e["field"] for e in refused.json()["errors"]}
    assert named == {"people[0].attributes.topics", "people[1].attributes.seats"}
    assert db.scalar(select(User.id).where(User.email == "x@example.com")) is None
    made = client.post(
        "/api/v1/invitations",
        json={
            "people": [
                {"email": "x@example.com", "attributes": {"seats": 3, "topics": ["B", "a"]}},
                {"email": "y@example.com", "attributes": {"seats": 40}},
            ],
            "welcome_email": {"send": False},
        },
        headers=headers,
    )
    assert made.status_code == 201, made.text
    users = {
        u.email: u
        for u in db.scalars(select(User).where(User.email.in_(["x@example.com", "y@example.com"])))
    }
    assert users["x@example.com"].attributes == {"seats": 3, "topics": ["b", "a"]}
    assert users["y@example.com"].attributes == {"seats": 40}
    found = client.get("/api/v1/users", params={"q": "seats:>10"}, headers=headers).json()
    assert [u["email"] for u in found["items"]] == ["y@example.com"]
    rows = db.scalars(
        select(UserFieldValue.text_value).where(
            UserFieldValue.user_id == users["x@example.com"].id,
            UserFieldValue.text_value.is_not(None),
        )
    ).all()
    assert sorted(rows) == ["a", "b"]


def test_a_user_sets_their_own_values_and_may_not_clear_a_required_one(
    db: Session, org: Organization
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
    make_field(db, org, key="plan", label="Plan", type="text")
    user = factories.make_user(db, org)
    actor = Actor(organization_id=org.id, user_id=user.id, api_key_id=None, name="them")
    version = user.version
    account.change_own_attributes(db, actor=actor, user=user, values={"company": "Acme"})
    assert user.attributes == {"company": "Acme"}
    assert user.version == version + 1
    assert (
        db.scalar(select(UserFieldValue.text_value).where(UserFieldValue.user_id == user.id))
        == "acme"
    )
    with pytest.raises(InvalidInput) as cleared:
        account.change_own_attributes(db, actor=actor, user=user, values={"company": None})
    assert set(cleared.value.fields) == {"attributes.company"}
    with pytest.raises(InvalidInput) as forbidden:
        account.change_own_attributes(db, actor=actor, user=user, values={"plan": "Pro"})
    assert "may not be edited by the user" in forbidden.value.fields["attributes.plan"]
    assert user.attributes == {"company": "Acme"}
