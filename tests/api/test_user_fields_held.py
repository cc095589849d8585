"""The custom fields' schema a server process holds between requests
(users.attributes.schema): used while the organization's user_fields_version is the one
it was read at, read again once a change has moved it, and never taken from a change
that was rolled back."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests import factories
from userdesk.access.rules import system_actor
from userdesk.organizations.models import Organization
from userdesk.users import attributes, fields
from userdesk.users.field_schemas import UserFieldCreate


def _plan(db: Session, org: Organization) -> None:
    data = UserFieldCreate(key="plan", label="Plan", type="text")
    fields.create_field(db, actor=system_actor(org.id), data=data)


def test_a_change_made_elsewhere_is_read_at_the_next_request(
    client: TestClient, db: Session, org: Organization
) -> None:
    """A change in another unit of work leaves this process's schema held, under the old
    version: the next request, reading the new version with its key, reads them again."""
    user = factories.make_user(db, org)
    headers = {"Authorization": f"Bearer {factories.make_api_key(db, org)}"}
    first = client.get("/api/v1/users", headers=headers).json()["items"]
    assert first[0]["attributes"] == {}
    held_version = attributes._HELD[org.id][0]

    _plan(db, org)
    attributes.write(db, user, {"plan": "pro"})
    db.flush()

    assert attributes._HELD[org.id][0] == held_version  # what another process would hold
    items = client.get("/api/v1/users?q=plan:pro", headers=headers).json()["items"]
    assert [item["attributes"] for item in items] == [{"plan": "pro"}]
    assert attributes._HELD[org.id][0] != held_version


def test_a_change_rolled_back_leaves_the_schema_as_it_was(
    client: TestClient, db: Session, org: Organization
) -> None:
    factories.make_user(db, org)
    headers = {"Authorization": f"Bearer {factories.make_api_key(db, org)}"}
    assert client.get("/api/v1/users", headers=headers).status_code == 200

    with db.begin_nested() as change:
        _plan(db, org)
        assert "plan" in attributes.schema(db, org.id).fields  # this unit of work's own
        change.rollback()

    answer = client.get("/api/v1/users?q=plan:pro", headers=headers)
    assert answer.status_code == 400
    assert "plan" in answer.json()["errors"][0]["detail"]
    _plan(db, org)
    db.flush()
    assert client.get("/api/v1/users?q=plan:pro", headers=headers).status_code == 200


def test_a_unit_of_work_reads_the_fields_it_changed(db: Session, org: Organization) -> None:
    """Within the change's own transaction: the new field at once, unheld by the process."""
    attributes.note_version(db, org.id, 0)
    assert attributes.schema(db, org.id).active == []
    _plan(db, org)
    assert [spec.key for spec in attributes.schema(db, org.id).active] == ["plan"]
    held = attributes._HELD.get(org.id)
    assert held is None or "plan" not in held[1].fields  # not committed: not held
