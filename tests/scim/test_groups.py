"""/scim/v2/Groups: groups and their members kept in step with the identity provider."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from tests import factories
from tests.scim.conftest import Scim, patch_body
from userdesk.access.models import Group
from userdesk.audit.models import AuditEvent
from userdesk.organizations.models import Organization
from userdesk.users.models import UserGroup

GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"


def _members(db: Session, group_id: str) -> set[int]:
    db.expire_all()
    return set(db.scalars(select(UserGroup.user_id).where(UserGroup.group_id == int(group_id))))


def test_a_group_is_created_with_its_members_and_read_back(scim: Scim, db: Session) -> None:
    ann, bob = scim.create("ann@example.com"), scim.create("bob@example.com")
    body = {
        "schemas": [GROUP_SCHEMA],
        "displayName": "Support EU",
        "externalId": "grp-1",
        "members": [{"value": ann["id"]}, {"value": bob["id"]}],
    }
    response = scim.send("POST", "/Groups", body)
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["displayName"] == "Support EU"
    assert created["externalId"] == "grp-1"
    assert {member["value"] for member in created["members"]} == {ann["id"], bob["id"]}
    assert _members(db, created["id"]) == {int(ann["id"]), int(bob["id"])}
    read = scim.get(f"/Groups/{created['id']}")
    assert read.headers["etag"] == read.json()["meta"]["version"]
    found = scim.get("/Groups", filter='displayName eq "support eu"').json()
    assert [group["id"] for group in found["Resources"]] == [created["id"]]
    assert scim.get("/Groups", filter='displayName sw "Sales"').json()["totalResults"] == 0
    slim = scim.get(f"/Groups/{created['id']}", excludedAttributes="members").json()
    assert "members" not in slim


def test_entra_and_okta_member_patches_add_and_remove(scim: Scim, db: Session) -> None:
    users = [scim.create(f"m{n}@example.com") for n in range(3)]
    group = scim.send("POST", "/Groups", {"schemas": [GROUP_SCHEMA], "displayName": "Ops"}).json()
    path = f"/Groups/{group['id']}"
    # Entra ID: capitalised ops, a list of members to add, a value-path remove.
    added = scim.send(
        "PATCH",
        path,
        patch_body({"op": "Add", "path": "members", "value": [{"value": u["id"]} for u in users]}),
    )
    assert added.status_code == 200, added.text
    assert _members(db, group["id"]) == {int(u["id"]) for u in users}
    removed = scim.send(
        "PATCH",
        path,
        patch_body({"op": "Remove", "path": f'members[value eq "{users[0]["id"]}"]'}),
    )
    assert removed.status_code == 200, removed.text
    assert _members(db, group["id"]) == {int(users[1]["id"]), int(users[2]["id"])}
    # Okta: rename without a path, then members replaced by a remove and an add.
    okta = patch_body(
        {"op": "replace", "value": {"id": group["id"], "displayName": "Operations"}},
        {"op": "remove", "path": f'members[value eq "{users[1]["id"]}"]'},
        {"op": "add", "path": "members", "value": [{"value": users[0]["id"]}]},
    )
    response = scim.send("PATCH", path, okta)
    assert response.status_code == 200, response.text
    assert response.json()["displayName"] == "Operations"
    assert _members(db, group["id"]) == {int(users[0]["id"]), int(users[2]["id"])}
    everyone_out = scim.send("PATCH", path, patch_body({"op": "remove", "path": "members"}))
    assert everyone_out.status_code == 200
    assert _members(db, group["id"]) == set()
    actions = db.scalars(
        select(AuditEvent.action).where(AuditEvent.actor_name == "SCIM token Okta")
    ).all()
    assert "user.added_to_group" in actions
    assert "user.updated" in actions
    assert "group.renamed" in actions


def test_a_member_that_is_not_a_user_is_a_400(scim: Scim) -> None:
    body = {"schemas": [GROUP_SCHEMA], "displayName": "X", "members": [{"value": "999999"}]}
    response = scim.send("POST", "/Groups", body)
    assert response.status_code == 400
    assert response.json()["scimType"] == "invalidValue"
    assert "999999" in response.json()["detail"]


def test_a_taken_group_name_is_a_409_uniqueness(scim: Scim) -> None:
    body = {"schemas": [GROUP_SCHEMA], "displayName": "Twice"}
    assert scim.send("POST", "/Groups", body).status_code == 201
    again = scim.send("POST", "/Groups", {**body, "displayName": "twice"})
    assert again.status_code == 409


def test_an_administrator_is_not_put_in_a_group_by_a_token(
    scim: Scim, db: Session, org: Organization
) -> None:
    admin = factories.make_admin(db, org)
    body = {
        "schemas": [GROUP_SCHEMA],
        "displayName": "Admins",
        "members": [{"value": str(admin.id)}],
    }
    assert scim.send("POST", "/Groups", body).status_code == 403
    assert db.scalar(select(Group).where(Group.name == "Admins")) is None


def test_deleting_a_group_keeps_its_users(scim: Scim, db: Session) -> None:
    member = scim.create("stay@example.com")
    group = scim.send(
        "POST",
        "/Groups",
        {"schemas": [GROUP_SCHEMA], "displayName": "Temp", "members": [{"value": member["id"]}]},
    ).json()
    stale = scim.send("DELETE", f"/Groups/{group['id']}", None, {"If-Match": 'W/"nope"'})
    assert stale.status_code == 412
    assert scim.send("DELETE", f"/Groups/{group['id']}").status_code == 204
    assert scim.get(f"/Groups/{group['id']}").status_code == 404
    assert scim.get(f"/Users/{member['id']}").status_code == 200


def test_search_across_users_and_groups_pages_through_both(scim: Scim) -> None:
    for n in range(3):
        scim.create(f"both{n}@example.com")
    for name in ("G1", "G2"):
        scim.send("POST", "/Groups", {"schemas": [GROUP_SCHEMA], "displayName": name})
    search = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
    first = scim.send("POST", "/.search", {"schemas": [search], "startIndex": 1, "count": 4})
    body = first.json()
    assert body["totalResults"] == 5
    assert len(body["Resources"]) == 4
    rest = scim.send("POST", "/.search", {"schemas": [search], "startIndex": 5, "count": 4})
    assert [r["displayName"] for r in rest.json()["Resources"]] == ["G2"]
    only_groups = scim.send(
        "POST", "/.search", {"schemas": [search], "filter": 'displayName eq "G1"'}
    ).json()
    assert only_groups["totalResults"] == 1
