"""The organization's custom fields as SCIM's userdesk extension of User (scim.extension):
listed in /Schemas and /ResourceTypes, read, written on create, PUT and PATCH through the
same checks as the API's attributes, and filterable as the query language filters them."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.scim.conftest import USER_SCHEMA, Scim, patch_body
from userdesk.access.rules import system_actor
from userdesk.audit.models import AuditEvent
from userdesk.organizations.models import Organization
from userdesk.scim.extension import SCHEMA_URN
from userdesk.users import fields
from userdesk.users.field_schemas import UserFieldCreate
from userdesk.users.models import User

FIELDS: list[dict[str, Any]] = [
    {"key": "plan", "type": "choice", "options": ["Free", "Pro", "Enterprise"]},
    {"key": "seats", "type": "number"},
    {"key": "vip", "type": "boolean"},
    {"key": "since", "type": "date"},
    {"key": "company", "type": "text"},
    {"key": "secret", "type": "text", "visibility": "admins", "editable_by": "admins"},
    {"key": "old", "type": "text"},
]


@pytest.fixture
def defined(db: Session, org: Organization) -> None:
    actor = system_actor(org.id, "tests")
    made = {
        spec["key"]: fields.create_field(
            db, actor=actor, data=UserFieldCreate(label=spec["key"].title(), **spec)
        )
        for spec in FIELDS
    }
    fields.archive_field(db, actor=actor, field_id=made["old"].id)
    db.flush()


def _ext(resource: dict[str, Any]) -> dict[str, Any]:
    return resource.get(SCHEMA_URN, {})


def _stored(db: Session, user_id: str) -> dict[str, Any]:
    db.expire_all()
    return db.get_one(User, int(user_id)).attributes or {}


def test_without_fields_no_extension_is_published(scim: Scim) -> None:
    schemas = scim.get("/Schemas").json()
    assert SCHEMA_URN not in [s["id"] for s in schemas["Resources"]]
    user_type = scim.get("/ResourceTypes/User").json()
    assert SCHEMA_URN not in [e["schema"] for e in user_type.get("schemaExtensions", [])]


def test_the_schema_lists_the_fields_not_archived_with_their_types(
    scim: Scim, defined: None
) -> None:
    found = scim.get(f"/Schemas/{SCHEMA_URN}")
    assert found.status_code == 200, found.text
    attrs = {a["name"]: a for a in found.json()["attributes"]}
    # archived "old" is not there
    assert set(attrs) == {"plan", "seats", "vip", "since", "company", "secret"}
    assert attrs["plan"]["type"] == "string"
    assert attrs["plan"]["canonicalValues"] == ["Free", "Pro", "Enterprise"]
    assert attrs["seats"]["type"] == "decimal"
    assert attrs["vip"]["type"] == "boolean"
    assert attrs["company"]["mutability"] == "readWrite"
    user_type = scim.get("/ResourceTypes/User").json()
    assert {"schema": SCHEMA_URN, "required": False} in user_type["schemaExtensions"]
    listed = [s["id"] for s in scim.get("/Schemas").json()["Resources"]]
    assert SCHEMA_URN in listed


def test_create_read_put_and_patch_values(db: Session, scim: Scim, defined: None) -> None:
    made = scim.create(
        "ann@example.com",
        schemas=[USER_SCHEMA, SCHEMA_URN],
        **{SCHEMA_URN: {"plan": "pro", "seats": 5, "vip": True}},
    )
    assert _ext(made) == {"plan": "Pro", "seats": 5, "vip": True}
    assert SCHEMA_URN in made["schemas"]
    assert _stored(db, made["id"]) == {"plan": "Pro", "seats": 5, "vip": True}
    got = scim.get(f"/Users/{made['id']}").json()
    assert _ext(got) == {"plan": "Pro", "seats": 5, "vip": True}
    # excluded when asked
    bare = scim.get(f"/Users/{made['id']}", excludedAttributes=SCHEMA_URN).json()
    assert SCHEMA_URN not in bare
    # PATCH by path, in Entra ID's case of op names, and by the URN's object
    patched = scim.send(
        "PATCH",
        f"/Users/{made['id']}",
        patch_body(
            {"op": "Replace", "path": f"{SCHEMA_URN}:seats", "value": 12},
            {"op": "remove", "path": f"{SCHEMA_URN}:vip"},
            {"op": "add", "value": {SCHEMA_URN: {"company": "Acme"}}},
        ),
    )
    assert patched.status_code == 200, patched.text
    assert _ext(patched.json()) == {"plan": "Pro", "seats": 12, "company": "Acme"}
    assert patched.json()["meta"]["version"] != got["meta"]["version"]
    # PUT sets what its extension holds and keeps the rest
    put = scim.send(
        "PUT",
        f"/Users/{made['id']}",
        {
            "schemas": [USER_SCHEMA, SCHEMA_URN],
            "userName": "ann@example.com",
            "name": {"givenName": "Ann", "familyName": "Lee"},
            SCHEMA_URN: {"plan": "Enterprise", "company": None},
        },
    )
    assert put.status_code == 200, put.text
    assert _ext(put.json()) == {"plan": "Enterprise", "seats": 12}
    assert _stored(db, made["id"]) == {"plan": "Enterprise", "seats": 12}
    changed = db.scalars(
        select(AuditEvent).where(
            AuditEvent.action == "user.updated", AuditEvent.target_id == str(made["id"])
        )
    ).all()
    assert changed
    assert all(e.actor_name == "SCIM token Okta" for e in changed)
    # a list shows them too, and /.search over every resource type
    listed = scim.get("/Users", filter='userName eq "ann@example.com"').json()
    assert _ext(listed["Resources"][0]) == {"plan": "Enterprise", "seats": 12}
    searched = scim.send(
        "POST",
        "/.search",
        {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
            "filter": f"{SCHEMA_URN}:seats eq 12",
        },
    )
    assert searched.status_code == 200, searched.text
    [found] = searched.json()["Resources"]
    assert (found["id"], _ext(found)) == (made["id"], {"plan": "Enterprise", "seats": 12})


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"plan": "Gold"}, "plan"),
        ({"seats": "many"}, "seats"),
        ({"vip": "yes please"}, "vip"),
        ({"since": "yesterday"}, "since"),
        ({"nope": 1}, "nope"),
        ({"old": "x"}, "old"),
    ],
)
def test_a_bad_value_or_field_is_a_400_invalid_value_naming_it(
    db: Session, scim: Scim, defined: None, values: dict[str, Any], named: str
) -> None:
    refused = scim.send(
        "POST",
        "/Users",
        {"schemas": [USER_SCHEMA], "userName": "bo@example.com", SCHEMA_URN: values},
    )
    assert refused.status_code == 400, refused.text
    assert refused.json()["scimType"] == "invalidValue"
    assert f"{SCHEMA_URN}:{named}" in refused.json()["detail"]
    assert db.scalar(select(User).where(User.email == "bo@example.com")) is None
    made = scim.create("cy@example.com")
    patched = scim.send(
        "PATCH",
        f"/Users/{made['id']}",
        patch_body({"op": "replace", "path": f"{SCHEMA_URN}:{named}", "value": values[named]}),
    )
    assert patched.status_code == 400, patched.text
    assert f"{SCHEMA_URN}:{named}" in patched.json()["detail"]
    assert _stored(db, made["id"]) == {}


def test_filters_on_custom_fields_match_a_brute_force_evaluation(
    db: Session, scim: Scim, defined: None
) -> None:
    plans = ["Free", "Pro", "Enterprise", None]
    made = []
    for n in range(24):
        values: dict[str, Any] = {"seats": n}
        if plans[n % 4] is not None:
            values["plan"] = plans[n % 4]
        if n % 3 == 0:
            values["vip"] = n % 2 == 0
        made.append((scim.create(f"u{n}@example.com", **{SCHEMA_URN: values})["id"], values))

    def ids(expression: str) -> set[str]:
        response = scim.get("/Users", filter=expression, count=100)
        assert response.status_code == 200, (expression, response.text)
        return {r["id"] for r in response.json()["Resources"]}

    def brute(test: Any) -> set[str]:
        return {user_id for user_id, values in made if test(values)}

    u = SCHEMA_URN
    cases = {
        f'{u}:plan eq "pro"': lambda v: v.get("plan") == "Pro",
        f'{u}:plan ne "pro"': lambda v: v.get("plan") != "Pro",
        f"{u}:plan pr": lambda v: "plan" in v,
        f"not ({u}:plan pr)": lambda v: "plan" not in v,
        f"{u}:seats gt 10": lambda v: v["seats"] > 10,
        f"{u}:seats le 3": lambda v: v["seats"] <= 3,
        f"{u}:vip eq true": lambda v: v.get("vip") is True,
        f'{u}:seats ge 5 and {u}:plan eq "free"': lambda v: (
            v["seats"] >= 5 and v.get("plan") == "Free"
        ),
        f'{u}:seats lt 2 or {u}:plan eq "enterprise"': lambda v: (
            v["seats"] < 2 or v.get("plan") == "Enterprise"
        ),
    }
    for expression, test in cases.items():
        assert ids(expression) == brute(test), expression
    # the cursor way pages the same filter
    first = scim.get("/Users", filter=f"{u}:seats ge 0", cursor="", count=10).json()
    assert first["totalResults"] == 24
    assert "nextCursor" in first
    for bad in (f'{u}:plan co "r"', f'{u}:plan eq "gold"', f'{u}:nope eq "x"', f'{u}:old eq "x"'):
        refused = scim.get("/Users", filter=bad)
        assert refused.status_code == 400, bad
        assert refused.json()["scimType"] == "invalidFilter", bad
    # a Group has no such attribute: /Groups refuses it
    assert scim.get("/Groups", filter=f'{u}:plan eq "pro"').status_code == 400
