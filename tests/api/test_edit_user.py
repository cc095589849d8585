from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests import factories
from tests.mail.test_invitation_flow import outbox_link
from userdesk.mail.models import OutboxMessage
from userdesk.organizations.models import Organization


def bearer(key: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", **extra}


def test_an_edit_based_on_a_stale_version_is_refused_with_412(
    client: TestClient, db: Session, org: Organization
) -> None:
    key = factories.make_api_key(db, org)
    user = factories.make_user(db, org, first_name="Ann")
    etag = client.get(f"/api/v1/users/{user.id}", headers=bearer(key)).headers["etag"]
    first = client.patch(
        f"/api/v1/users/{user.id}",
        json={"first_name": "Anne"},
        headers=bearer(key, **{"If-Match": etag}),
    )
    assert first.status_code == 200
    assert first.json()["first_name"] == "Anne"
    assert first.headers["etag"] != etag
    stale = client.patch(
        f"/api/v1/users/{user.id}",
        json={"first_name": "Annie"},
        headers=bearer(key, **{"If-Match": etag}),
    )
    assert stale.status_code == 412
    assert stale.json()["code"] == "precondition_failed"
    assert (
        client.get(f"/api/v1/users/{user.id}", headers=bearer(key)).json()["first_name"] == "Anne"
    )
    missing = client.patch(
        f"/api/v1/users/{user.id}", json={"first_name": "X"}, headers=bearer(key)
    )
    assert missing.status_code == 428


def test_team_groups_and_roles_are_replaced_and_left_alone_when_not_given(
    client: TestClient, db: Session, org: Organization
) -> None:
    key = factories.make_api_key(db, org)
    old_group = factories.make_group(db, org, "Old")
    new_group = factories.make_group(db, org, "New")
    team = factories.make_team(db, org, "Sales")
    user = factories.make_user(db, org, groups=[old_group], roles=("Member",))
    etag = client.get(f"/api/v1/users/{user.id}", headers=bearer(key)).headers["etag"]
    agent = factories.role(db, org, "Agent")
    body = {"team_id": str(team.id), "group_ids": [str(new_group.id)], "role_ids": [str(agent.id)]}
    edited = client.patch(
        f"/api/v1/users/{user.id}", json=body, headers=bearer(key, **{"If-Match": etag})
    )
    assert edited.status_code == 200, edited.text
    shown = edited.json()
    assert shown["team"]["name"] == "Sales"
    assert [g["name"] for g in shown["groups"]] == ["New"]
    assert [r["name"] for r in shown["roles"]] == ["Agent"]
    names_only = client.patch(
        f"/api/v1/users/{user.id}",
        json={"last_name": "Renamed"},
        headers=bearer(key, **{"If-Match": edited.headers["etag"]}),
    ).json()
    assert names_only["team"]["name"] == "Sales"
    assert [g["name"] for g in names_only["groups"]] == ["New"]


def test_a_new_email_holds_only_once_its_owner_confirms_it(
    client: TestClient, db: Session, org: Organization
) -> None:
    key = factories.make_api_key(db, org)
    user = factories.make_user(db, org, email="old@example.com")
    etag = client.get(f"/api/v1/users/{user.id}", headers=bearer(key)).headers["etag"]
    edited = client.patch(
        f"/api/v1/users/{user.id}",
        json={"email": "new@example.com"},
        headers=bearer(key, **{"If-Match": etag}),
    )
    assert edited.json()["email"] == "old@example.com"
    notice = db.scalars(
        select(OutboxMessage).where(OutboxMessage.recipient == "old@example.com")
    ).one()
    assert "new@example.com" in notice.payload["text"]
    link = outbox_link(db, "new@example.com", "/email/confirm/")
    assert client.get(link).status_code == 200
    assert (
        client.get(f"/api/v1/users/{user.id}", headers=bearer(key)).json()["email"]
        == "new@example.com"
    )
    assert client.get(link).status_code == 410


def test_the_last_administrator_keeps_the_role(
    client: TestClient, db: Session, org: Organization
) -> None:
    key = factories.make_api_key(db, org)
    admin = factories.make_admin(db, org)
    etag = client.get(f"/api/v1/users/{admin.id}", headers=bearer(key)).headers["etag"]
    member = factories.role(db, org, "Member")
    response = client.patch(
        f"/api/v1/users/{admin.id}",
        json={"role_ids": [str(member.id)]},
        headers=bearer(key, **{"If-Match": etag}),
    )
    assert response.status_code == 409
    assert response.json()["code"] == "user.last_administrator"


def test_a_bad_field_is_named(client: TestClient, db: Session, org: Organization) -> None:
    key = factories.make_api_key(db, org)
    user = factories.make_user(db, org)
    etag = client.get(f"/api/v1/users/{user.id}", headers=bearer(key)).headers["etag"]
    response = client.patch(
        f"/api/v1/users/{user.id}",
        json={"email": "nope", "group_ids": ["x"]},
        headers=bearer(key, **{"If-Match": etag}),
    )
    assert response.status_code == 400
    fields = {e["field"] for e in response.json()["errors"]}
    assert "email" in fields
