"""The organization's user profile schema (/api/v1/user-fields, users.fields): fields
created, changed, archived with their values kept, purged with them, and refused where
a rule says no."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests import factories
from userdesk.access import service as access
from userdesk.audit.models import AuditEvent
from userdesk.organizations.models import Organization
from userdesk.users.models import User, UserField, UserFieldValue


def bearer(key: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", **extra}


def make_field(client: TestClient, secret: str, **body: Any) -> dict[str, Any]:
    answer = client.post(
        "/api/v1/user-fields",
        json={"key": "plan", "label": "Plan", "type": "text", **body},
        headers=bearer(secret),
    )
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def set_attributes(
    client: TestClient, key: str, user_id: int, values: dict[str, Any]
) -> tuple[int, dict[str, Any]]:
    etag = client.get(f"/api/v1/users/{user_id}", headers=bearer(key)).headers["etag"]
    answer = client.patch(
        f"/api/v1/users/{user_id}",
        json={"attributes": values},
        headers=bearer(key, **{"If-Match": etag}),
    )
    return answer.status_code, answer.json()


def errors(answer: Any) -> dict[str, str]:
    """The fields a problem names, and what it says of each."""
    return {e["field"]: e["detail"] for e in answer.json().get("errors", [])}


def body_errors(body: dict[str, Any]) -> dict[str, str]:
    return {e["field"]: e["detail"] for e in body.get("errors", [])}


def values_of(db: Session, field_id: str) -> int:
    return db.scalar(select(func.count()).where(UserFieldValue.field_id == int(field_id))) or 0


def test_a_field_is_created_listed_read_and_changed(
    client: TestClient, db: Session, org: Organization
) -> None:
    key = factories.make_api_key(db, org)
    created = make_field(
        client,
        key,
        key="plan",
        type="choice",
        options=["Free", "Pro", "Team"],
        required_on=["invitation"],
        position=2,
    )
    assert created["key"] == "plan"
    assert created["options"] == ["Free", "Pro", "Team"]
    assert created["archived_at"] is None
    listed = client.get("/api/v1/user-fields", headers=bearer(key)).json()["items"]
    assert [f["key"] for f in listed] == ["plan"]
    one = client.get(f"/api/v1/user-fields/{created['id']}", headers=bearer(key)).json()
    assert one == created
    changed = client.patch(
        f"/api/v1/user-fields/{created['id']}",
        json={"label": "Subscription", "visibility": "self"},
        headers=bearer(key),
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["label"] == "Subscription"
    assert changed.json()["visibility"] == "self"
    actions = db.scalars(
        select(AuditEvent.action).where(AuditEvent.target_type == "user_field")
    ).all()
    assert list(actions) == ["user_field.created", "user_field.updated"]


def test_reserved_malformed_and_taken_keys_are_refused_by_name(
    client: TestClient, db: Session, org: Organization
) -> None:
    key = factories.make_api_key(db, org)
    for bad in ("status", "role", "team", "seen", "created", "has", "is", "email"):
        answer = client.post(
            "/api/v1/user-fields",
            json={"key": bad, "label": "X", "type": "text"},
            headers=bearer(key),
        )
        assert answer.status_code == 400, bad
        assert "built-in" in errors(answer)["key"]
    for bad in ("Plan", "1plan", "plan-type", "", "a" * 41, "plan\x00", "pl an"):
        answer = client.post(
            "/api/v1/user-fields",
            json={"key": bad, "label": "X", "type": "text"},
            headers=bearer(key),
        )
        assert answer.status_code == 400, bad
        assert "key" in errors(answer)
    make_field(client, key, key="plan")
    again = client.post(
        "/api/v1/user-fields",
        json={"key": "plan", "label": "X", "type": "text"},
        headers=bearer(key),
    )
    assert again.status_code == 409
    assert errors(again)["key"] == "'plan' is taken"


def test_bad_settings_are_each_named(client: TestClient, db: Session, org: Organization) -> None:
    key = factories.make_api_key(db, org)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"type": "colour"}, "type"),
        ({"type": "choice"}, "options"),
        ({"type": "choice", "options": ["a", "A"]}, "options"),
        ({"type": "choice", "options": ["a,b"]}, "options"),
        ({"type": "text", "options": ["a"]}, "options"),
        ({"type": "number", "searchable": True}, "searchable"),
        ({"type": "text", "visibility": "everyone"}, "visibility"),
        ({"type": "text", "editable_by": "root"}, "editable_by"),
        ({"type": "text", "required_on": ["signup"]}, "required_on"),
        ({"type": "number", "validation": {"pattern": "x"}}, "validation.pattern"),
        ({"type": "number", "validation": {"min": 5, "max": 1}}, "validation.min"),
        ({"type": "date", "validation": {"min": "yesterday"}}, "validation.min"),
        ({"type": "text", "validation": {"pattern": "(a+)+$"}}, "validation.pattern"),
        ({"type": "text", "validation": {"pattern": "(a|aa)*b"}}, "validation.pattern"),
        ({"type": "text", "validation": {"pattern": "["}}, "validation.pattern"),
        ({"type": "text", "validation": {"pattern": ".*.*.*.*x"}}, "validation.pattern"),
        ({"type": "text", "label": "   "}, "label"),
    ]
    for body, field in cases:
        answer = client.post(
            "/api/v1/user-fields",
            json={"key": "thing", "label": "Thing", **body},
            headers=bearer(key),
        )
        assert answer.status_code in (400, 422), (body, answer.text)
        if answer.status_code == 400:
            assert field in errors(answer), (body, answer.json())
    too_long = client.post(
        "/api/v1/user-fields",
        json={
            "key": "thing",
            "label": "Thing",
            "type": "text",
            "validation": {"pattern": "a" * 201},
        },
        headers=bearer(key),
    )
    assert too_long.status_code in (400, 422)
    assert "pattern" in too_long.text
    assert db.scalar(select(func.count()).select_from(UserField)) == 0


def test_only_settings_managers_change_the_schema_and_readers_read_it(
    client: TestClient, db: Session, org: Organization
) -> None:
    admin = factories.make_api_key(db, org)
    field = make_field(client, admin, key="plan")
    agent = factories.make_api_key(db, org, "Agent")
    assert client.get("/api/v1/user-fields", headers=bearer(agent)).status_code == 200
    refused = [
        client.post(
            "/api/v1/user-fields",
            json={"key": "x", "label": "X", "type": "text"},
            headers=bearer(agent),
        ),
        client.patch(
            f"/api/v1/user-fields/{field['id']}", json={"label": "Y"}, headers=bearer(agent)
        ),
        client.delete(f"/api/v1/user-fields/{field['id']}", headers=bearer(agent)),
        client.delete(f"/api/v1/user-fields/{field['id']}?purge=true", headers=bearer(agent)),
        client.post(f"/api/v1/user-fields/{field['id']}/restore", headers=bearer(agent)),
    ]
    assert [r.status_code for r in refused] == [403] * 5
    member = factories.make_api_key(db, org, "Member")
    assert client.get("/api/v1/user-fields", headers=bearer(member)).status_code == 403


def test_another_organizations_fields_do_not_exist(
    client: TestClient, db: Session, org: Organization
) -> None:
    key = factories.make_api_key(db, org)
    field = make_field(client, key, key="plan")
    other = factories.make_organization(db)
    stranger = factories.make_api_key(db, other)
    assert client.get("/api/v1/user-fields", headers=bearer(stranger)).json() == {"items": []}
    for answer in (
        client.get(f"/api/v1/user-fields/{field['id']}", headers=bearer(stranger)),
        client.patch(
            f"/api/v1/user-fields/{field['id']}", json={"label": "Y"}, headers=bearer(stranger)
        ),
        client.delete(f"/api/v1/user-fields/{field['id']}?purge=true", headers=bearer(stranger)),
    ):
        assert answer.status_code == 404
    # The same key is free in another organization.
    make_field(client, stranger, key="plan")


def test_archive_keeps_values_hidden_and_unwritable_until_restored(
    client: TestClient, db: Session, org: Organization
) -> None:
    key = factories.make_api_key(db, org)
    field = make_field(client, key, key="company")
    user = factories.make_user(db, org)
    assert set_attributes(client, key, user.id, {"company": "Acme"})[0] == 200
    archived = client.delete(f"/api/v1/user-fields/{field['id']}", headers=bearer(key))
    assert archived.json() == {
        "id": field["id"],
        "key": "company",
        "purged": False,
        "values_deleted": 0,
    }
    assert client.get(f"/api/v1/users/{user.id}", headers=bearer(key)).json()["attributes"] == {}
    status, body = set_attributes(client, key, user.id, {"company": "Other"})
    assert status == 400
    assert "archived" in body_errors(body)["attributes.company"]
    filtered = client.get("/api/v1/users", params={"q": "company:acme"}, headers=bearer(key))
    assert filtered.status_code == 400
    assert "company" in errors(filtered)["q"]
    assert values_of(db, field["id"]) == 1
    restored = client.post(f"/api/v1/user-fields/{field['id']}/restore", headers=bearer(key))
    assert restored.json()["archived_at"] is None
    shown = client.get(f"/api/v1/users/{user.id}", headers=bearer(key)).json()
    assert shown["attributes"] == {"company": "Acme"}
    found = client.get("/api/v1/users", params={"q": "company:acme"}, headers=bearer(key))
    assert [u["id"] for u in found.json()["items"]] == [str(user.id)]


def test_purge_deletes_the_field_and_every_value(
    client: TestClient, db: Session, org: Organization
) -> None:
    key = factories.make_api_key(db, org)
    field = make_field(client, key, key="company")
    kept = make_field(client, key, key="country")
    users = [factories.make_user(db, org) for _ in range(3)]
    for user in users[:2]:
        set_attributes(client, key, user.id, {"company": "Acme", "country": "NZ"})
    purged = client.delete(f"/api/v1/user-fields/{field['id']}?purge=true", headers=bearer(key))
    assert purged.status_code == 200, purged.text
    assert purged.json()["values_deleted"] == 2
    assert values_of(db, field["id"]) == 0
    assert values_of(db, kept["id"]) == 2
    db.expire_all()
    for user in users[:2]:
        assert db.get_one(User, user.id).attributes == {"country": "NZ"}
    assert client.get(f"/api/v1/user-fields/{field['id']}", headers=bearer(key)).status_code == 404
    # The key is free again.
    make_field(client, key, key="company", type="number")
    actions = db.scalars(select(AuditEvent.action).where(AuditEvent.target_type == "user_field"))
    assert "user_field.purged" in list(actions)


def test_a_type_change_is_refused_with_the_count_of_values_that_would_not_convert(
    client: TestClient, db: Session, org: Organization
) -> None:
    key = factories.make_api_key(db, org)
    field = make_field(client, key, key="seats")
    users = [factories.make_user(db, org) for _ in range(4)]
    for user, value in zip(users, ["10", " 25 ", "many", "3.5"], strict=True):
        assert set_attributes(client, key, user.id, {"seats": value})[0] == 200
    refused = client.patch(
        f"/api/v1/user-fields/{field['id']}", json={"type": "number"}, headers=bearer(key)
    )
    assert refused.status_code == 409
    assert refused.json()["code"] == "user_field.unconvertible"
    assert "1 of 4 values" in refused.json()["detail"]
    assert "many" in refused.json()["detail"]
    db.expire_all()
    assert db.get_one(UserField, int(field["id"])).type == "text"
    assert db.get_one(User, users[2].id).attributes == {"seats": "many"}
    allowed = client.patch(
        f"/api/v1/user-fields/{field['id']}",
        json={"type": "number", "drop_unconvertible": True},
        headers=bearer(key),
    )
    assert allowed.status_code == 200, allowed.text
    db.expire_all()
    assert [db.get_one(User, u.id).attributes for u in users] == [
        {"seats": 10},
        {"seats": 25},
        None,
        {"seats": 3.5},
    ]
    found = client.get("/api/v1/users", params={"q": "seats:>5"}, headers=bearer(key)).json()
    assert sorted(u["id"] for u in found["items"]) == sorted(str(u.id) for u in users[:2])
    assert values_of(db, field["id"]) == 3


def test_fewer_options_count_the_values_that_no_longer_fit(
    client: TestClient, db: Session, org: Organization
) -> None:
    key = factories.make_api_key(db, org)
    field = make_field(client, key, key="plan", type="choice", options=["Free", "Pro", "Team"])
    users = [factories.make_user(db, org) for _ in range(3)]
    for user, value in zip(users, ["Free", "pro", "Team"], strict=True):
        status, body = set_attributes(client, key, user.id, {"plan": value})
        assert status == 200, body
    assert body["attributes"] == {"plan": "Team"}
    refused = client.patch(
        f"/api/v1/user-fields/{field['id']}", json={"options": ["Free", "Pro"]}, headers=bearer(key)
    )
    assert refused.status_code == 409
    assert "1 of 3" in refused.json()["detail"]
    to_choices = client.patch(
        f"/api/v1/user-fields/{field['id']}", json={"type": "choices"}, headers=bearer(key)
    )
    assert to_choices.status_code == 200, to_choices.text
    shown = client.get(f"/api/v1/users/{users[1].id}", headers=bearer(key)).json()
    assert shown["attributes"] == {"plan": ["Pro"]}


def test_a_date_field_changed_to_text_is_found_by_its_text(
    client: TestClient, db: Session, org: Organization
) -> None:
    key = factories.make_api_key(db, org)
    field = make_field(client, key, key="since", type="date")
    user = factories.make_user(db, org)
    assert set_attributes(client, key, user.id, {"since": "2024-05-01"})[0] == 200
    changed = client.patch(
        f"/api/v1/user-fields/{field['id']}", json={"type": "text"}, headers=bearer(key)
    )
    assert changed.status_code == 200
    found = client.get("/api/v1/users", params={"q": "since:2024-05-01"}, headers=bearer(key))
    assert [u["id"] for u in found.json()["items"]] == [str(user.id)]


def test_the_audit_log_names_field_changes_in_words(db: Session, org: Organization) -> None:
    from userdesk.audit import wording
    from userdesk.users import fields
    from userdesk.users.field_schemas import UserFieldCreate

    actor = access.actor_for_user(db, factories.make_admin(db, org, password=None))
    created = fields.create_field(
        db, actor=actor, data=UserFieldCreate(key="plan", label="Plan", type="text")
    )
    fields.archive_field(db, actor=actor, field_id=created.id)
    events = db.scalars(
        select(AuditEvent).where(AuditEvent.target_type == "user_field").order_by(AuditEvent.id)
    ).all()
    assert [e.action for e in events] == ["user_field.created", "user_field.archived"]
    assert all(e.action in wording.AUDIT_ACTIONS for e in events)
    assert (
        wording.target_label("user_field", events[0].target_id, None, events[0].changes) == "Plan"
    )


def test_the_same_key_made_twice_at_once_is_one_field_and_a_409(
    db: Session, org: Organization, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second of two requests that both found the key free meets the unique key: a
    409, not a server error, and the first field stands."""
    from userdesk.errors import Conflict
    from userdesk.users import fields
    from userdesk.users.field_schemas import UserFieldCreate

    actor = access.actor_for_user(db, factories.make_admin(db, org, password=None))
    first = fields.create_field(
        db, actor=actor, data=UserFieldCreate(key="seats", label="S", type="number")
    )
    real_scalar = db.scalar
    calls = {"n": 0}

    def key_looks_free(statement: Any, *args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1  # the first look-up is whether the key is taken
        return None if calls["n"] == 1 else real_scalar(statement, *args, **kwargs)

    monkeypatch.setattr(db, "scalar", key_looks_free)
    with pytest.raises(Conflict) as refused:
        fields.create_field(
            db, actor=actor, data=UserFieldCreate(key="seats", label="S2", type="text")
        )
    assert refused.value.fields == {"key": "'seats' is taken"}
    monkeypatch.undo()
    rows = db.scalars(select(UserField).where(UserField.organization_id == org.id)).all()
    assert [(f.id, f.label) for f in rows] == [(first.id, "S")]
