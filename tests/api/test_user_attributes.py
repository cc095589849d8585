"""A user's custom fields (`attributes`) through the API: every type written on create and
PATCH and read back; every bad write a 400 naming the field and the value; who may
write and see which field; one organization's fields unknown to another."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests import factories
from userdesk.access import service as access
from userdesk.audit.models import AuditEvent
from userdesk.errors import InvalidInput, PermissionDenied
from userdesk.organizations.models import Organization
from userdesk.users import attributes, fields
from userdesk.users import service as users
from userdesk.users.attributes import Party
from userdesk.users.field_schemas import UserFieldCreate
from userdesk.users.models import User, UserFieldValue
from userdesk.users.schemas import UserUpdate

FIELDS: list[dict[str, Any]] = [
    {"key": "company", "type": "text", "validation": {"max_length": 20}},
    {"key": "code", "type": "text", "validation": {"pattern": "[A-Z]{2}-[0-9]{3}"}},
    {"key": "seats", "type": "number", "validation": {"min": 1, "max": 1000}},
    {"key": "beta", "type": "boolean"},
    {"key": "since", "type": "date", "validation": {"min": "2000-01-01"}},
    {"key": "plan", "type": "choice", "options": ["Free", "Pro", "Team"]},
    {"key": "langs", "type": "choices", "options": ["en", "fr", "de"]},
    {"key": "billing", "type": "email"},
    {"key": "site", "type": "url"},
]
GOOD = {
    "company": "Acme Ltd",
    "code": "NZ-123",
    "seats": 12,
    "beta": True,
    "since": "2024-02-29",
    "plan": "Pro",
    "langs": ["fr", "en"],
    "billing": "bills@acme.example",
    "site": "https://acme.example/about",
}
BAD: list[tuple[str, Any, str]] = [
    ("company", "x" * 21, "longer than 20"),
    ("company", 12, "not text"),
    ("company", "a\x00b", "NUL"),
    ("code", "nz-123", "pattern"),
    ("code", "NZ-123" + "4" * 200, "longer than"),
    ("seats", 0, "less than 1"),
    ("seats", 1001, "more than 1000"),
    ("seats", "12", "not a number"),
    ("seats", True, "not a number"),
    ("seats", 1e300, "not a number between"),
    ("beta", "yes", "not true or false"),
    ("beta", 1, "not true or false"),
    ("since", "1999-12-31", "before 2000-01-01"),
    ("since", "2024-02-30", "not a date"),
    ("since", "29/02/2024", "not a date"),
    ("plan", "Gold", "not one of the choices"),
    ("plan", ["Pro"], "not one of the choices"),
    ("langs", "fr", "not a list"),
    ("langs", ["fr", "xx"], "not one of the choices"),
    ("billing", "not-an-address", ""),
    ("site", "javascript:alert(1)", "http or https"),
    ("site", "ftp://acme.example", "http or https"),
]


def bearer(key: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", **extra}


def errors(answer: Any) -> dict[str, str]:
    return {e["field"]: e["detail"] for e in answer.json().get("errors", [])}


def make_fields(client: TestClient, key: str, specs: list[dict[str, Any]] = FIELDS) -> None:
    for spec in specs:
        answer = client.post(
            "/api/v1/user-fields",
            json={"label": spec["key"].title(), **spec},
            headers=bearer(key),
        )
        assert answer.status_code == 201, answer.text


def patch(client: TestClient, key: str, user_id: int, body: dict[str, Any]) -> Any:
    etag = client.get(f"/api/v1/users/{user_id}", headers=bearer(key)).headers["etag"]
    return client.patch(
        f"/api/v1/users/{user_id}", json=body, headers=bearer(key, **{"If-Match": etag})
    )


def test_every_type_is_created_read_changed_and_cleared(
    client: TestClient, db: Session, org: Organization
) -> None:
    key = factories.make_api_key(db, org)
    make_fields(client, key)
    created = client.post(
        "/api/v1/users",
        json={"email": "ann@example.com", "attributes": {**GOOD, "plan": " pro "}},
        headers=bearer(key),
    )
    assert created.status_code == 201, created.text
    assert created.json()["attributes"] == GOOD  # the choice as the schema spells it
    user_id = int(created.json()["id"])
    assert client.get(f"/api/v1/users/{user_id}", headers=bearer(key)).json()["attributes"] == GOOD
    listed = client.get("/api/v1/users", headers=bearer(key)).json()["items"]
    assert next(u for u in listed if u["id"] == str(user_id))["attributes"] == GOOD
    changed = patch(client, key, user_id, {"attributes": {"seats": 2.5, "beta": False}})
    assert changed.status_code == 200, changed.text
    assert changed.json()["attributes"] == {**GOOD, "seats": 2.5, "beta": False}
    cleared = patch(client, key, user_id, {"attributes": {"company": None, "langs": None}})
    expected = {k: v for k, v in GOOD.items() if k not in ("company", "langs")}
    assert cleared.json()["attributes"] == {**expected, "seats": 2.5, "beta": False}
    # Other fields left alone by an edit that does not name attributes.
    names = patch(client, key, user_id, {"first_name": "Ann"})
    assert names.json()["attributes"] == cleared.json()["attributes"]
    db.expire_all()
    rows = db.scalars(select(UserFieldValue).where(UserFieldValue.user_id == user_id)).all()
    assert len(rows) == len(expected)  # one row per value; the cleared ones gone
    plan = next(r for r in rows if r.text_value == "pro")
    assert plan.organization_id == org.id


@pytest.mark.parametrize(("field", "value", "words"), BAD)
def test_a_bad_value_is_a_400_naming_the_field_and_the_value(
    client: TestClient, db: Session, org: Organization, field: str, value: Any, words: str
) -> None:
    key = factories.make_api_key(db, org)
    make_fields(client, key, [s for s in FIELDS if s["key"] == field])
    user = factories.make_user(db, org)
    answer = patch(client, key, user.id, {"attributes": {field: value}})
    assert answer.status_code == 400, answer.text
    named = errors(answer)
    assert list(named) == [f"attributes.{field}"]
    assert words in named[f"attributes.{field}"]
    shown = repr(value) if not isinstance(value, str) else value
    if "\x00" not in shown:  # a NUL is named, not echoed
        assert shown[:20] in named[f"attributes.{field}"]
    created = client.post(
        "/api/v1/users",
        json={"email": "new@example.com", "attributes": {field: value}},
        headers=bearer(key),
    )
    assert created.status_code == 400
    assert f"attributes.{field}" in errors(created)
    assert db.scalar(select(User.id).where(User.email == "new@example.com")) is None


def test_unknown_keys_and_malformed_attributes_are_refused_never_dropped(
    client: TestClient, db: Session, org: Organization
) -> None:
    key = factories.make_api_key(db, org)
    make_fields(client, key, FIELDS[:1])
    user = factories.make_user(db, org)
    unknown = patch(client, key, user.id, {"attributes": {"company": "A", "colour": "red"}})
    assert unknown.status_code == 400
    assert "'colour' is not a field" in errors(unknown)["attributes.colour"]
    db.expire_all()
    assert db.get_one(User, user.id).attributes is None  # nothing written, not even company
    for body in ({"attributes": ["company"]}, {"attributes": "x"}, {"attributes": 3}):
        answer = patch(client, key, user.id, body)
        assert answer.status_code == 400, body
        assert "attributes" in answer.text
    many = patch(client, key, user.id, {"attributes": {f"k{i}": 1 for i in range(101)}})
    assert many.status_code == 400
    assert "attributes" in errors(many)


def test_an_edit_of_attributes_needs_the_current_etag(
    client: TestClient, db: Session, org: Organization
) -> None:
    key = factories.make_api_key(db, org)
    make_fields(client, key, FIELDS[:1])
    user = factories.make_user(db, org)
    etag = client.get(f"/api/v1/users/{user.id}", headers=bearer(key)).headers["etag"]
    first = client.patch(
        f"/api/v1/users/{user.id}",
        json={"attributes": {"company": "A"}},
        headers=bearer(key, **{"If-Match": etag}),
    )
    assert first.status_code == 200
    stale = client.patch(
        f"/api/v1/users/{user.id}",
        json={"attributes": {"company": "B"}},
        headers=bearer(key, **{"If-Match": etag}),
    )
    assert stale.status_code == 412
    none = client.patch(
        f"/api/v1/users/{user.id}", json={"attributes": {"company": "C"}}, headers=bearer(key)
    )
    assert none.status_code == 428
    assert client.get(f"/api/v1/users/{user.id}", headers=bearer(key)).json()["attributes"] == {
        "company": "A"
    }


def test_the_edit_is_audited_with_before_and_after(
    client: TestClient, db: Session, org: Organization
) -> None:
    key = factories.make_api_key(db, org)
    make_fields(client, key, FIELDS[:3])
    user = factories.make_user(db, org)
    patch(client, key, user.id, {"attributes": {"company": "A", "seats": 3}})
    patch(client, key, user.id, {"attributes": {"company": "B", "seats": 3}})
    events = db.scalars(
        select(AuditEvent)
        .where(AuditEvent.action == "user.updated", AuditEvent.target_id == str(user.id))
        .order_by(AuditEvent.id)
    ).all()
    assert [e.changes["attributes"] for e in events] == [
        {"from": {"company": None, "seats": None}, "to": {"company": "A", "seats": 3}},
        {"from": {"company": "A"}, "to": {"company": "B"}},
    ]


def _human(db: Session, org: Organization, role: str = "Administrator") -> Any:
    person = factories.make_user(db, org, roles=(role,), password=None)
    return access.actor_for_user(db, person)


def _make(db: Session, org: Organization, **spec: Any) -> None:
    actor = _human(db, org)
    fields.create_field(db, actor=actor, data=UserFieldCreate(label="X", type="text", **spec))


def test_who_may_edit_and_see_each_field(db: Session, org: Organization) -> None:
    """An admin edits and sees admins' and self fields, not system ones; the user on their
    own page only self fields; the system (an API key) everything."""
    _make(db, org, key="note", editable_by="admins", visibility="admins")
    _make(db, org, key="nickname", editable_by="self", visibility="self")
    _make(db, org, key="crm_id", editable_by="system", visibility="system")
    _make(db, org, key="score", editable_by="system", visibility="admins")
    admin = _human(db, org)
    user = factories.make_user(db, org)
    with pytest.raises(InvalidInput) as refused:
        users.update_user(
            db,
            actor=admin,
            user_id=user.id,
            data=UserUpdate(attributes={"crm_id": "c-1"}),
            version=user.version,
            base_url="http://x",
        )
    assert "may not be edited by admins" in refused.value.fields["attributes.crm_id"]
    values = {"crm_id": "c-1", "score": "high", "note": "n", "nickname": "Annie"}
    checked = attributes.checked(db, organization_id=org.id, values=values, party=Party.SYSTEM)
    attributes.write(db, user, checked)
    assert attributes.readable(db, org.id, user.attributes, Party.SYSTEM) == values
    assert attributes.readable(db, org.id, user.attributes, Party.ADMIN) == {
        "note": "n",
        "nickname": "Annie",
        "score": "high",
    }
    assert attributes.readable(db, org.id, user.attributes, Party.SELF) == {"nickname": "Annie"}
    with pytest.raises(InvalidInput) as own:
        attributes.checked(db, organization_id=org.id, values={"note": "x"}, party=Party.SELF)
    assert "may not be edited by the user" in own.value.fields["attributes.note"]
    assert attributes.checked(
        db, organization_id=org.id, values={"nickname": "Ann"}, party=Party.SELF
    ) == {"nickname": "Ann"}
    # An admin's list shows what an admin may see, and no filter reaches a hidden field.
    page = users.list_users(db, actor=admin, q=f"{user.email}")
    assert page.items[0]["attributes"] == {"note": "n", "nickname": "Annie", "score": "high"}
    with pytest.raises(InvalidInput) as hidden:
        users.list_users(db, actor=admin, q="crm_id:c-1")
    assert "crm_id" in hidden.value.fields["q"]
    assert users.list_users(db, actor=admin, q="score:high").items[0]["id"] == str(user.id)


def test_an_admin_without_users_update_writes_no_attributes(
    client: TestClient, db: Session, org: Organization
) -> None:
    key = factories.make_api_key(db, org)
    make_fields(client, key, FIELDS[:1])
    user = factories.make_user(db, org)
    agent = _human(db, org, "Agent")
    with pytest.raises(PermissionDenied):
        users.update_user(
            db,
            actor=agent,
            user_id=user.id,
            data=UserUpdate(attributes={"company": "A"}),
            version=user.version,
            base_url="http://x",
        )
    agent_key = factories.make_api_key(db, org, "Agent")
    answer = client.patch(
        f"/api/v1/users/{user.id}",
        json={"attributes": {"company": "A"}},
        headers=bearer(agent_key, **{"If-Match": f'W/"{user.version}"'}),
    )
    assert answer.status_code == 403
    created = client.post(
        "/api/v1/users",
        json={"email": "x@example.com", "attributes": {"company": "A"}},
        headers=bearer(agent_key),
    )
    assert created.status_code == 403
    db.expire_all()
    assert db.get_one(User, user.id).attributes is None


def test_one_organizations_fields_are_unknown_to_another(
    client: TestClient, db: Session, org: Organization
) -> None:
    key = factories.make_api_key(db, org)
    make_fields(client, key, FIELDS[:1])
    mine = factories.make_user(db, org)
    assert patch(client, key, mine.id, {"attributes": {"company": "Mine"}}).status_code == 200
    other = factories.make_organization(db)
    other_key = factories.make_api_key(db, other)
    theirs = factories.make_user(db, other)
    answer = patch(client, other_key, theirs.id, {"attributes": {"company": "Theirs"}})
    assert answer.status_code == 400
    assert "not a field" in errors(answer)["attributes.company"]
    filtered = client.get("/api/v1/users", params={"q": "company:mine"}, headers=bearer(other_key))
    assert filtered.status_code == 400
    # Their own field of the same key holds their own values only.
    make_fields(client, other_key, FIELDS[:1])
    assert (
        patch(client, other_key, theirs.id, {"attributes": {"company": "Mine"}}).status_code == 200
    )
    found = client.get("/api/v1/users", params={"q": "company:mine"}, headers=bearer(other_key))
    assert [u["id"] for u in found.json()["items"]] == [str(theirs.id)]
    counts = client.get(
        "/api/v1/users/counts", params={"q": "company:mine"}, headers=bearer(other_key)
    ).json()
    assert counts["all"]["count"] == 1
