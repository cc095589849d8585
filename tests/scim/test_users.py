"""/scim/v2/Users: what identity providers do to users, through the users services."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests import factories
from tests.scim.conftest import MEDIA, USER_SCHEMA, Scim, make_token, patch_body
from userdesk.access.rules import system_actor
from userdesk.audit.models import AuditEvent
from userdesk.auth.models import LoginSession
from userdesk.db.base import utcnow
from userdesk.organizations.models import Organization
from userdesk.scim import tokens
from userdesk.users.models import User


def _user(db: Session, user_id: str) -> User:
    db.expire_all()
    return db.get_one(User, int(user_id))


def test_a_created_user_is_active_created_via_scim_and_read_back(scim: Scim, db: Session) -> None:
    created = scim.create("Ann.Lee@Example.com", externalId="okta-1")
    assert created["userName"].lower() == "ann.lee@example.com"
    (email,) = created["emails"]
    assert (email["value"].lower(), email["type"], email["primary"]) == (
        "ann.lee@example.com",
        "work",
        True,
    )
    assert created["active"] is True
    assert created["meta"]["location"].endswith(f"/scim/v2/Users/{created['id']}")
    user = _user(db, created["id"])
    assert (user.status, user.created_via, user.external_id) == ("active", "scim", "okta-1")
    read = scim.get(f"/Users/{created['id']}")
    assert read.status_code == 200
    assert read.headers["content-type"].startswith(MEDIA)
    assert read.headers["etag"] == read.json()["meta"]["version"] == f'W/"{user.version}"'
    assert read.json()["name"] == {"givenName": "Ann", "familyName": "Lee"}


def test_the_same_email_twice_is_a_409_uniqueness(scim: Scim) -> None:
    scim.create("dup@example.com")
    again = scim.send("POST", "/Users", {"schemas": [USER_SCHEMA], "userName": "DUP@example.com"})
    assert again.status_code == 409
    assert again.json()["scimType"] == "uniqueness"


@pytest.mark.parametrize(
    ("body", "scim_type"),
    [
        ({"schemas": [USER_SCHEMA], "userName": "a@example.com", "colour": "red"}, "invalidSyntax"),
        ({"schemas": [USER_SCHEMA], "userName": "not an email"}, "invalidValue"),
        (
            {"schemas": [USER_SCHEMA], "userName": "b@example.com", "active": "maybe"},
            "invalidValue",
        ),
        ([1, 2], "invalidSyntax"),
    ],
)
def test_a_bad_user_is_a_400_with_a_scim_type(scim: Scim, body: Any, scim_type: str) -> None:
    response = scim.send("POST", "/Users", body)
    assert response.status_code == 400, response.text
    assert response.json()["scimType"] == scim_type
    assert response.json()["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]


def test_a_body_that_is_not_json_is_a_400_invalid_syntax(scim: Scim) -> None:
    response = scim.client.post("/scim/v2/Users", content=b'{"userName": ', headers=scim.headers())
    assert response.status_code == 400
    assert response.json()["scimType"] == "invalidSyntax"


def test_attributes_and_excluded_attributes_shape_the_answer(scim: Scim) -> None:
    created = scim.create("shape@example.com")
    only = scim.get(f"/Users/{created['id']}", attributes="userName,name.familyName").json()
    assert set(only) == {"schemas", "id", "userName", "name"}
    assert only["name"] == {"familyName": "Lee"}
    without = scim.get(f"/Users/{created['id']}", excludedAttributes="emails,name").json()
    assert "emails" not in without
    assert "name" not in without
    assert without["userName"]
    listed = scim.get("/Users", attributes="userName").json()["Resources"]
    assert all(set(item) == {"schemas", "id", "userName"} for item in listed)


def test_pages_by_index_cover_every_user_once_in_order(scim: Scim) -> None:
    for n in range(7):
        scim.create(f"page{n}@example.com", family=f"F{6 - n}")
    seen: list[str] = []
    for start in (1, 4, 7):
        page = scim.get("/Users", startIndex=start, count=3, sortBy="name.familyName").json()
        assert page["totalResults"] == 7
        assert page["startIndex"] == start
        assert page["itemsPerPage"] == len(page["Resources"])
        seen += [item["name"]["familyName"] for item in page["Resources"]]
    assert seen == [f"F{n}" for n in range(7)]
    descending = scim.get("/Users", sortBy="userName", sortOrder="descending").json()
    names = [item["userName"] for item in descending["Resources"]]
    assert names == sorted(names, reverse=True)
    assert scim.get("/Users", count=0).json()["totalResults"] == 7
    searched = scim.send(
        "POST",
        "/Users/.search",
        {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
            "filter": 'userName sw "page1"',
        },
    )
    assert [item["userName"] for item in searched.json()["Resources"]] == ["page1@example.com"]


def test_if_match_with_a_stale_version_is_a_412_and_changes_nothing(
    scim: Scim, db: Session
) -> None:
    created = scim.create("etag@example.com")
    version = created["meta"]["version"]
    body = patch_body({"op": "replace", "path": "name.givenName", "value": "Anya"})
    changed = scim.send("PATCH", f"/Users/{created['id']}", body, {"If-Match": version})
    assert changed.status_code == 200
    assert changed.json()["meta"]["version"] != version
    stale = patch_body({"op": "replace", "path": "name.givenName", "value": "Other"})
    refused = scim.send("PATCH", f"/Users/{created['id']}", stale, {"If-Match": version})
    assert refused.status_code == 412
    assert _user(db, created["id"]).first_name == "Anya"
    put = {"schemas": [USER_SCHEMA], "userName": "etag@example.com"}
    assert (
        scim.send("PUT", f"/Users/{created['id']}", put, {"If-Match": version}).status_code == 412
    )
    gone = scim.send("DELETE", f"/Users/{created['id']}", None, {"If-Match": version})
    assert gone.status_code == 412


# What Okta sends (its SCIM 2.0 guide): a PATCH without path, active and names as a value.
OKTA_DEACTIVATE = patch_body({"op": "replace", "value": {"active": False}})
OKTA_RENAME = patch_body(
    {"op": "replace", "value": {"name": {"givenName": "Okta", "familyName": "Renamed"}}}
)
# What Microsoft Entra ID sends (its SCIM guide): capitalised op names, paths, "False" as a
# string, and the enterprise extension.
ENTRA_UPDATE = patch_body(
    {"op": "Replace", "path": "name.givenName", "value": "Entra"},
    {"op": "Add", "path": "name.familyName", "value": "Given"},
    {"op": "Replace", "path": "externalId", "value": "entra-42"},
    {
        "op": "Add",
        "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
        "value": "Support",
    },
)
ENTRA_DISABLE = patch_body({"op": "Replace", "path": "active", "value": "False"})
ENTRA_ENABLE = patch_body({"op": "Replace", "path": "active", "value": "True"})
ENTRA_REMOVE_EXTERNAL_ID = patch_body({"op": "Remove", "path": "externalId"})


def test_okta_patches_rename_and_deactivate(scim: Scim, db: Session) -> None:
    created = scim.create("okta@example.com")
    renamed = scim.send("PATCH", f"/Users/{created['id']}", OKTA_RENAME)
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["name"] == {"givenName": "Okta", "familyName": "Renamed"}
    off = scim.send("PATCH", f"/Users/{created['id']}", OKTA_DEACTIVATE)
    assert off.json()["active"] is False
    user = _user(db, created["id"])
    assert (user.status, user.status_reason) == ("disabled", "Deprovisioned by Okta")


def test_entra_patches_with_capitalised_ops_and_strings(scim: Scim, db: Session) -> None:
    created = scim.create("entra@example.com")
    path = f"/Users/{created['id']}"
    updated = scim.send("PATCH", path, ENTRA_UPDATE)
    assert updated.status_code == 200, updated.text
    assert updated.json()["name"] == {"givenName": "Entra", "familyName": "Given"}
    assert updated.json()["externalId"] == "entra-42"
    assert scim.send("PATCH", path, ENTRA_DISABLE).json()["active"] is False
    assert _user(db, created["id"]).status == "disabled"
    assert scim.send("PATCH", path, ENTRA_ENABLE).json()["active"] is True
    assert _user(db, created["id"]).status == "active"
    removed = scim.send("PATCH", path, ENTRA_REMOVE_EXTERNAL_ID)
    assert "externalId" not in removed.json()
    assert _user(db, created["id"]).external_id is None


def test_an_unknown_patch_op_is_a_400(scim: Scim) -> None:
    created = scim.create("op@example.com")
    response = scim.send(
        "PATCH", f"/Users/{created['id']}", patch_body({"op": "move", "path": "active"})
    )
    assert response.status_code == 400
    assert response.json()["scimType"] == "invalidValue"


def test_put_replaces_names_and_active(scim: Scim, db: Session) -> None:
    created = scim.create("put@example.com", externalId="p-1")
    body = {
        "schemas": [USER_SCHEMA],
        "userName": "put@example.com",
        "name": {"givenName": "Put", "familyName": "Whole"},
        "externalId": "p-2",
        "active": False,
    }
    response = scim.send("PUT", f"/Users/{created['id']}", body)
    assert response.status_code == 200, response.text
    user = _user(db, created["id"])
    assert (user.first_name, user.last_name, user.external_id, user.status) == (
        "Put",
        "Whole",
        "p-2",
        "disabled",
    )


def test_changes_are_audited_with_the_tokens_name(scim: Scim, db: Session) -> None:
    created = scim.create("audit@example.com")
    scim.send("PATCH", f"/Users/{created['id']}", OKTA_DEACTIVATE)
    events = db.scalars(
        select(AuditEvent)
        .where(AuditEvent.target_type == "user", AuditEvent.target_id == created["id"])
        .order_by(AuditEvent.id)
    ).all()
    assert [event.action for event in events] == ["user.created", "user.disabled"]
    assert {event.actor_name for event in events} == {"SCIM token Okta"}


def test_deprovisioning_cuts_the_users_sessions_at_once(
    scim: Scim, db: Session, org: Organization, app: FastAPI
) -> None:
    person = factories.make_user(db, org, email="leaver@example.com")
    with TestClient(app, base_url="http://testserver", follow_redirects=False) as browser:
        factories.login(browser, "leaver@example.com")
        assert browser.get("/me").status_code == 200
        off = scim.send("PATCH", f"/Users/{person.id}", OKTA_DEACTIVATE)
        assert off.status_code == 200, off.text
        assert browser.get("/me").status_code == 303  # to the sign-in page
    live = db.scalars(
        select(LoginSession).where(
            LoginSession.user_id == person.id, LoginSession.revoked_at.is_(None)
        )
    ).all()
    assert live == []


def test_a_user_banned_by_an_admin_stays_banned_after_active_true(
    scim: Scim, db: Session, org: Organization
) -> None:
    person = factories.make_user(db, org, email="banned@example.com")
    person.status, person.status_reason = "banned", "Abuse"
    person.status_until = utcnow() + timedelta(days=3)
    db.flush()
    response = scim.send("PATCH", f"/Users/{person.id}", ENTRA_ENABLE)
    assert response.status_code == 200, response.text
    assert response.json()["active"] is False
    assert _user(db, str(person.id)).status == "banned"
    trashed = factories.make_user(db, org, email="trashed@example.com", status="trashed")
    scim.send("PATCH", f"/Users/{trashed.id}", ENTRA_ENABLE)
    assert _user(db, str(trashed.id)).status == "trashed"


def test_an_admin_disabled_user_is_enabled_by_active_true(
    scim: Scim, db: Session, org: Organization
) -> None:
    person = factories.make_user(db, org, email="paused@example.com", status="disabled")
    assert scim.send("PATCH", f"/Users/{person.id}", ENTRA_ENABLE).json()["active"] is True
    assert _user(db, str(person.id)).status == "active"


def test_delete_is_the_lifecycles_delete_and_the_user_is_gone_for_scim(
    scim: Scim, db: Session
) -> None:
    created = scim.create("gone@example.com")
    assert scim.send("DELETE", f"/Users/{created['id']}").status_code == 204
    user = _user(db, created["id"])
    assert user.status == "deleted"  # the row and its data are kept
    assert scim.get(f"/Users/{created['id']}").status_code == 404
    assert scim.get("/Users", filter='userName eq "gone@example.com"').json()["totalResults"] == 0


def test_an_administrator_is_out_of_a_provisioning_tokens_reach(
    scim: Scim, db: Session, org: Organization
) -> None:
    """The provisioning role holds less than an Administrator: it cannot disable one."""
    admin = factories.make_admin(db, org, email="boss@example.com")
    response = scim.send("PATCH", f"/Users/{admin.id}", OKTA_DEACTIVATE)
    assert response.status_code == 403
    assert _user(db, str(admin.id)).status == "active"


def test_without_a_valid_scim_token_every_endpoint_is_a_401(
    client: TestClient, db: Session, org: Organization
) -> None:
    revoked = make_token(db, org, "Old IdP")
    token_row = db.scalars(select(tokens.ScimToken).where(tokens.ScimToken.name == "Old IdP")).one()
    tokens.revoke_token(db, actor=system_actor(org.id, "tests"), token_id=token_row.id)
    db.flush()
    api_key = factories.make_api_key(db, org)
    for secret in (None, "scim_not-a-token", revoked, api_key):
        headers = {"Authorization": f"Bearer {secret}"} if secret else {}
        for path in ("/scim/v2/Users", "/scim/v2/ServiceProviderConfig", "/scim/v2/Schemas"):
            response = client.get(path, headers=headers)
            assert response.status_code == 401, (secret, path)
            assert response.headers["content-type"].startswith(MEDIA)
            assert response.json()["status"] == "401"
        # A POST to /Users is authenticated by the group of POSTs it joins (UserPosts).
        body = {"schemas": [USER_SCHEMA], "userName": "intruder@example.com"}
        response = client.post(
            "/scim/v2/Users", json=body, headers={**headers, "Content-Type": MEDIA}
        )
        assert response.status_code == 401, secret
        assert response.json()["status"] == "401"
    assert db.scalar(select(User.id).where(User.email == "intruder@example.com")) is None


def test_a_scim_token_opens_nothing_outside_scim(scim: Scim) -> None:
    headers = {"Authorization": f"Bearer {scim.token}"}
    for path in ("/api/v1/users", "/api/v1/roles", "/api/v1/audit", "/api/v1/webhooks"):
        assert scim.client.get(path, headers=headers).status_code == 401, path
    assert scim.client.get("/console/users", headers=headers).status_code in (303, 401)


def test_a_tokens_last_use_is_recorded(scim: Scim, db: Session) -> None:
    row = db.scalars(select(tokens.ScimToken)).one()
    assert row.last_used_at is None
    scim.get("/Users")
    db.expire_all()
    assert db.get_one(tokens.ScimToken, row.id).last_used_at is not None


def test_one_user_built_directly_is_what_scim2_models_would_write(
    scim: Scim, db: Session, org: Organization
) -> None:
    """POST, PATCH and GET of one user (every attribute) answer the JSON built directly
    (scim.users.resource_body); it is scim2-models' dump of the same user, for users with
    and without names, externalId, a team (department), active or not."""
    from scim2_models import Context

    from userdesk.scim import users as scim_users

    enterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
    team = factories.make_team(db, org, "Sales")

    def dumped(user_id: str) -> dict[str, Any]:
        user = _user(db, user_id)
        location = f"http://testserver/scim/v2/Users/{user.id}"
        return scim_users.to_resource(user, location=location).model_dump(
            scim_ctx=Context.RESOURCE_QUERY_RESPONSE
        )

    answers = [
        scim.create("one@example.com", externalId="x-1"),
        scim.create("two@example.com", given="", family=""),
        scim.create(
            "three@example.com",
            schemas=[USER_SCHEMA, enterprise],
            **{enterprise: {"department": "Sales"}},
        ),
    ]
    for answer in answers:
        assert answer == dumped(answer["id"])
    patched = scim.send(
        "PATCH",
        f"/Users/{answers[0]['id']}",
        patch_body({"op": "replace", "path": "active", "value": False}),
    )
    assert patched.status_code == 200, patched.text
    assert patched.json() == dumped(answers[0]["id"])
    assert patched.headers["ETag"] == patched.json()["meta"]["version"]
    for answer in answers:
        fetched = scim.get(f"/Users/{answer['id']}")
        assert fetched.json() == dumped(answer["id"])
        assert fetched.headers["ETag"] == fetched.json()["meta"]["version"]
    assert answers[2][enterprise] == {"department": "Sales"}
    assert _user(db, answers[2]["id"]).team_id == team.id
