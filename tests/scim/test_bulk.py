"""/scim/v2/Bulk: many operations in one request, each as its single route would do it."""

from __future__ import annotations

import time
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests import factories
from tests.scim.conftest import USER_SCHEMA, Scim, make_token, patch_body
from userdesk.access.models import Group
from userdesk.access.rules import Permission
from userdesk.audit.models import AuditEvent
from userdesk.organizations.models import Organization
from userdesk.scim import bulk, tokens
from userdesk.users.models import User, UserGroup

BULK_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"


def bulk_body(*operations: dict[str, Any], fail_on_errors: int | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"schemas": [BULK_SCHEMA], "Operations": list(operations)}
    if fail_on_errors is not None:
        body["failOnErrors"] = fail_on_errors
    return body


def post_user(bulk_id: str, email: str, **more: Any) -> dict[str, Any]:
    return {
        "method": "POST",
        "path": "/Users",
        "bulkId": bulk_id,
        "data": {
            "schemas": [USER_SCHEMA],
            "userName": email,
            "name": {"givenName": "Ann", "familyName": "Lee"},
            **more,
        },
    }


def post_group(bulk_id: str, name: str, members: list[str]) -> dict[str, Any]:
    return {
        "method": "POST",
        "path": "/Groups",
        "bulkId": bulk_id,
        "data": {
            "schemas": [GROUP_SCHEMA],
            "displayName": name,
            "members": [{"value": member} for member in members],
        },
    }


def run(scim: Scim, body: Any) -> list[dict[str, Any]]:
    response = scim.send("POST", "/Bulk", body)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/scim+json")
    assert response.json()["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:BulkResponse"]
    operations: list[dict[str, Any]] = response.json()["Operations"]
    return operations


def emails(db: Session, org: Organization) -> set[str]:
    db.expire_all()
    return set(db.scalars(select(User.email).where(User.organization_id == org.id)))


def test_a_group_created_after_its_members_refers_to_them_by_bulk_id(
    scim: Scim, db: Session, org: Organization
) -> None:
    """The group comes first in the request but runs after the users it names."""
    ops = run(
        scim,
        bulk_body(
            post_group("g1", "Support", ["bulkId:u1", "bulkId:u2"]),
            post_user("u1", "ann@example.com"),
            post_user("u2", "bob@example.com"),
        ),
    )
    assert [(op["bulkId"], op["status"]) for op in ops] == [
        ("u1", "201"),
        ("u2", "201"),
        ("g1", "201"),
    ]
    ann_id, bob_id = (op["location"].rsplit("/", 1)[1] for op in ops[:2])
    group_id = ops[2]["location"].rsplit("/", 1)[1]
    assert ops[0]["location"].endswith(f"/scim/v2/Users/{ann_id}")
    assert ops[2]["location"].endswith(f"/scim/v2/Groups/{group_id}")
    db.expire_all()
    members = set(db.scalars(select(UserGroup.user_id).where(UserGroup.group_id == int(group_id))))
    assert members == {int(ann_id), int(bob_id)}
    # An op's version is the ETag the single route answers (a user's moved on: the
    # group's creation added them to it).
    assert scim.get(f"/Groups/{group_id}").headers["etag"] == ops[2]["version"]
    assert scim.get(f"/Users/{ann_id}").headers["etag"] != ops[0]["version"]


def test_references_in_paths_and_patch_values_resolve(scim: Scim, db: Session) -> None:
    ops = run(
        scim,
        bulk_body(
            {
                "method": "PATCH",
                "path": "/Groups/bulkId:g",
                "data": patch_body(
                    {"op": "add", "path": "members", "value": [{"value": "bulkId:u"}]}
                ),
            },
            post_group("g", "Ops", []),
            post_user("u", "cy@example.com"),
            {"method": "DELETE", "path": "/Users/bulkId:gone"},
            post_user("gone", "gone@example.com"),
        ),
    )
    assert [op["status"] for op in ops] == ["201", "201", "200", "201", "204"], ops[2]
    group = ops[0]["location"].rsplit("/", 1)[1]
    user = ops[1]["location"].rsplit("/", 1)[1]
    listed = scim.get(f"/Groups/{group}").json()
    assert [member["value"] for member in listed["members"]] == [user]
    assert scim.get(ops[4]["location"].split("/scim/v2", 1)[1]).status_code == 404


def test_a_failing_operation_fails_alone(scim: Scim, db: Session, org: Organization) -> None:
    """Without failOnErrors, every operation runs; the failing one is rolled back alone."""
    scim.create("taken@example.com")
    ops = run(
        scim,
        bulk_body(
            post_user("a", "one@example.com"),
            post_user("b", "taken@example.com"),
            post_user("c", "not an email"),
            post_user("d", "two@example.com"),
        ),
    )
    assert [op["status"] for op in ops] == ["201", "409", "400", "201"]
    assert ops[1]["response"]["scimType"] == "uniqueness"
    assert ops[1]["response"]["status"] == "409"
    assert "location" not in ops[1]
    assert ops[2]["response"]["scimType"] == "invalidValue"
    assert "email" in ops[2]["response"]["detail"]
    assert {"one@example.com", "two@example.com", "taken@example.com"} <= emails(db, org)
    assert "not an email" not in emails(db, org)


def test_fail_on_errors_stops_after_that_many(scim: Scim, db: Session, org: Organization) -> None:
    scim.create("taken@example.com")
    ops = run(
        scim,
        bulk_body(
            post_user("a", "first@example.com"),
            post_user("b", "taken@example.com"),
            post_user("c", "never@example.com"),
            fail_on_errors=1,
        ),
    )
    assert [(op["bulkId"], op["status"]) for op in ops] == [("a", "201"), ("b", "409")]
    assert "first@example.com" in emails(db, org)
    assert "never@example.com" not in emails(db, org)
    two = run(
        scim,
        bulk_body(
            post_user("x", "taken@example.com"),
            post_user("y", "later@example.com"),
            post_user("z", "first@example.com"),
            post_user("w", "never2@example.com"),
            fail_on_errors=2,
        ),
    )
    assert [op["status"] for op in two] == ["409", "201", "409"]
    assert "never2@example.com" not in emails(db, org)


@pytest.mark.parametrize("value", [0, -1, "1", True, 1.5])
def test_fail_on_errors_must_be_a_positive_integer(scim: Scim, value: Any) -> None:
    body = bulk_body(post_user("a", "a@example.com"))
    body["failOnErrors"] = value
    response = scim.send("POST", "/Bulk", body)
    assert response.status_code == 400
    assert response.json()["scimType"] == "invalidValue"
    assert "failOnErrors" in response.json()["detail"]


def test_circular_references_fail_with_invalid_value(
    scim: Scim, db: Session, org: Organization
) -> None:
    """Two groups each naming the other as a member: neither runs; what waits on them
    fails too, and the rest of the request runs."""
    ops = run(
        scim,
        bulk_body(
            post_group("g1", "One", ["bulkId:g2"]),
            post_group("g2", "Two", ["bulkId:g1"]),
            post_user("self", "self@example.com", externalId="bulkId:self"),
            post_group("g3", "Three", ["bulkId:g1"]),
            post_user("fine", "fine@example.com"),
        ),
    )
    by_id = {op["bulkId"]: op for op in ops}
    assert set(by_id) == {"g1", "g2", "self", "g3", "fine"}
    for name in ("g1", "g2", "self"):
        assert by_id[name]["status"] == "409", by_id[name]
        assert by_id[name]["response"]["scimType"] == "invalidValue"
        assert "circular" in by_id[name]["response"]["detail"]
    assert by_id["g3"]["status"] == "400"
    assert "bulkId:g1 failed" in by_id["g3"]["response"]["detail"]
    assert by_id["fine"]["status"] == "201"
    db.expire_all()
    names = set(db.scalars(select(Group.name).where(Group.organization_id == org.id)))
    assert not names & {"One", "Two", "Three"}
    assert "self@example.com" not in emails(db, org)


def test_a_thick_web_of_references_is_answered_quickly(scim: Scim) -> None:
    """Groups each naming every other (tens of thousands of references, one circle) are
    refused in linear time, not by a search from each of them."""
    names = [f"g{n}" for n in range(180)]  # 32,400 references, under 1 MiB
    groups = [post_group(name, name, [f"bulkId:{other}" for other in names]) for name in names]
    started = time.perf_counter()
    ops = run(scim, bulk_body(*groups))
    assert time.perf_counter() - started < 30
    assert {op["status"] for op in ops} == {"409"}
    assert len(ops) == 180


def test_a_chain_after_a_circle_fails_as_waiting_on_it(scim: Scim) -> None:
    """A group that names a circle's member is not itself in the circle: it fails for the
    failed reference, and one between two circles likewise."""
    ops = run(
        scim,
        bulk_body(
            post_group("a", "A", ["bulkId:b"]),
            post_group("b", "B", ["bulkId:a"]),
            post_group("mid", "Mid", ["bulkId:a"]),
            post_group("c", "C", ["bulkId:d", "bulkId:mid"]),
            post_group("d", "D", ["bulkId:c"]),
        ),
    )
    status = {op["bulkId"]: op["status"] for op in ops}
    assert status == {"a": "409", "b": "409", "mid": "400", "c": "409", "d": "409"}


def test_an_unknown_bulk_id_fails_the_operation(scim: Scim) -> None:
    ops = run(scim, bulk_body(post_group("g", "Nobody", ["bulkId:nope"])))
    assert ops[0]["status"] == "400"
    assert "bulkId:nope" in ops[0]["response"]["detail"]


def test_too_many_operations_is_413(scim: Scim, db: Session, org: Organization) -> None:
    body = bulk_body(
        *(post_user(f"u{n}", f"u{n}@example.com") for n in range(bulk.MAX_OPERATIONS + 1))
    )
    response = scim.send("POST", "/Bulk", body)
    assert response.status_code == 413
    assert response.json()["status"] == "413"
    assert "maxOperations" in response.json()["detail"]
    assert "u0@example.com" not in emails(db, org)


def test_too_large_a_payload_is_413(scim: Scim) -> None:
    op = post_user("big", "big@example.com", externalId="x" * 200)
    body = bulk_body(*([op] * 6000))  # about 1.5 MB, under maxOperations' count check
    response = scim.send("POST", "/Bulk", body)
    assert response.status_code == 413
    assert response.headers["content-type"].startswith("application/scim+json")
    assert response.json()["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]


def test_service_provider_config_advertises_bulk(scim: Scim) -> None:
    config = scim.get("/ServiceProviderConfig").json()
    assert config["bulk"] == {
        "supported": True,
        "maxOperations": bulk.MAX_OPERATIONS,
        "maxPayloadSize": bulk.MAX_PAYLOAD,
    }


def test_other_organizations_ids_are_not_found(scim: Scim, db: Session) -> None:
    other = factories.make_organization(db)
    stranger = factories.make_user(db, other, email="stranger@example.com")
    group = factories.make_group(db, other, "Theirs")
    ops = run(
        scim,
        bulk_body(
            {
                "method": "PUT",
                "path": f"/Users/{stranger.id}",
                "data": {"schemas": [USER_SCHEMA], "userName": "mine@example.com"},
            },
            {"method": "DELETE", "path": f"/Users/{stranger.id}"},
            {"method": "DELETE", "path": f"/Groups/{group.id}"},
            post_group("g", "Mine", [str(stranger.id)]),
        ),
    )
    assert [op["status"] for op in ops] == ["404", "404", "404", "400"]
    db.expire_all()
    assert db.get_one(User, stranger.id).email == "stranger@example.com"
    assert db.get_one(User, stranger.id).status == "active"
    assert db.get(Group, group.id) is not None


def test_a_read_only_token_changes_nothing(
    scim: Scim, db: Session, org: Organization, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every operation is authorized as its single route is: a token that may only read
    fails each one with 403."""
    existing = scim.create("kept@example.com")
    monkeypatch.setattr(tokens, "PROVISIONING", frozenset({Permission.USERS_READ}))
    ops = run(
        scim,
        bulk_body(
            post_user("a", "new@example.com"),
            {"method": "DELETE", "path": f"/Users/{existing['id']}"},
            {
                "method": "PATCH",
                "path": f"/Users/{existing['id']}",
                "data": patch_body({"op": "replace", "path": "active", "value": False}),
            },
        ),
    )
    assert [op["status"] for op in ops] == ["403", "403", "403"]
    assert emails(db, org) >= {"kept@example.com"}
    assert "new@example.com" not in emails(db, org)
    db.expire_all()
    assert db.get_one(User, int(existing["id"])).status == "active"


def test_a_bulk_request_needs_a_token(scim: Scim) -> None:
    response = scim.client.post("/scim/v2/Bulk", json=bulk_body(post_user("a", "a@example.com")))
    assert response.status_code == 401


def test_every_operation_is_audited_with_the_tokens_name(
    scim: Scim, db: Session, org: Organization
) -> None:
    existing = scim.create("old@example.com")
    ops = run(
        scim,
        bulk_body(
            post_user("a", "a1@example.com"),
            post_user("b", "b1@example.com"),
            post_user("bad", "a1@example.com"),
            {
                "method": "PATCH",
                "path": f"/Users/{existing['id']}",
                "data": patch_body({"op": "replace", "path": "name.givenName", "value": "Zed"}),
            },
            {"method": "DELETE", "path": f"/Users/{existing['id']}"},
        ),
    )
    assert [op["status"] for op in ops] == ["201", "201", "409", "200", "204"]
    db.expire_all()
    events = db.scalars(
        select(AuditEvent).where(
            AuditEvent.organization_id == org.id, AuditEvent.target_type == "user"
        )
    ).all()
    created = [e for e in events if e.action == "user.created"]
    assert len(created) == 3  # the existing user's and the two of the request, not the failed
    assert {e.actor_name for e in events} == {"SCIM token Okta"}
    mine = [e for e in events if e.target_id == existing["id"]]
    assert [e.action for e in mine][-2:] == ["user.updated", "user.deleted"]


def test_version_is_if_match_per_operation(scim: Scim, db: Session) -> None:
    user = scim.create("v@example.com")
    stale = user["meta"]["version"]
    renamed = run(
        scim,
        bulk_body(
            {
                "method": "PATCH",
                "path": f"/Users/{user['id']}",
                "version": stale,
                "data": patch_body({"op": "replace", "path": "name.givenName", "value": "Vi"}),
            }
        ),
    )[0]
    assert renamed["status"] == "200"
    assert renamed["version"] != stale
    again = run(
        scim,
        bulk_body(
            {
                "method": "PUT",
                "path": f"/Users/{user['id']}",
                "version": stale,
                "data": {"schemas": [USER_SCHEMA], "userName": "v@example.com"},
            },
            {"method": "DELETE", "path": f"/Users/{user['id']}", "version": stale},
        ),
    )
    assert [op["status"] for op in again] == ["412", "412"]
    assert again[0]["location"].endswith(f"/Users/{user['id']}")
    assert scim.get(f"/Users/{user['id']}").json()["name"]["givenName"] == "Vi"


@pytest.mark.parametrize(
    ("operation", "words"),
    [
        ({"method": "GET", "path": "/Users"}, "method"),
        ({"method": "POST", "path": "/Users", "data": {"userName": "x@example.com"}}, "bulkId"),
        ({"method": "POST", "bulkId": "x", "data": {}}, "path"),
        ({"method": "PUT", "path": "/Users/1"}, "data"),
        ({"method": "DELETE", "path": "/Teams/1"}, "/Users or /Groups"),
        ({"method": "DELETE", "path": "/Users"}, "names a resource"),
        ("not an object", "object"),
        ({"method": "PATCH", "path": "/Users/99999999999999999999999", "data": {}}, ""),
    ],
)
def test_a_malformed_operation_fails_alone(scim: Scim, operation: Any, words: str) -> None:
    ops = run(scim, bulk_body(operation, post_user("ok", "ok@example.com")))
    assert ops[0]["status"].startswith("4"), ops[0]
    assert words in ops[0]["response"]["detail"]
    assert ops[1]["status"] == "201"


@pytest.mark.parametrize(
    "body",
    [
        [],
        {"Operations": []},
        {"schemas": [BULK_SCHEMA], "Operations": "no"},
        {"schemas": [BULK_SCHEMA]},
    ],
)
def test_a_malformed_request_is_400(scim: Scim, body: Any) -> None:
    response = scim.send("POST", "/Bulk", body)
    assert response.status_code == 400
    assert response.json()["scimType"] == "invalidSyntax"


def test_two_operations_with_one_bulk_id_are_refused(
    scim: Scim, db: Session, org: Organization
) -> None:
    response = scim.send(
        "POST",
        "/Bulk",
        bulk_body(post_user("same", "s1@example.com"), post_user("same", "s2@example.com")),
    )
    assert response.status_code == 400
    assert "same" in response.json()["detail"]
    assert "s1@example.com" not in emails(db, org)


def test_nul_in_an_operation_is_refused(scim: Scim) -> None:
    response = scim.send("POST", "/Bulk", bulk_body(post_user("n", "n\x00@example.com")))
    assert response.status_code == 400
    assert response.json()["scimType"] == "invalidValue"


def test_data_nested_too_deep_fails_alone(scim: Scim, db: Session, org: Organization) -> None:
    """Data nested hundreds of levels (orjson reads up to 1,024) is refused, not a 500."""
    deep: Any = "bulkId:ok"
    for _ in range(600):
        deep = {"x": deep}
    ops = run(
        scim,
        bulk_body(post_user("deep", "deep@example.com", nested=deep), post_user("ok", "ok@x.io")),
    )
    assert [(op["bulkId"], op["status"]) for op in ops] == [("deep", "400"), ("ok", "201")]
    assert "deeper" in ops[0]["response"]["detail"]
    assert "deep@example.com" not in emails(db, org)


def test_an_empty_request_does_nothing(scim: Scim) -> None:
    assert run(scim, bulk_body()) == []


def test_a_second_token_of_another_organization_sees_its_own(
    scim: Scim, db: Session, org: Organization
) -> None:
    """bulkIds are the request's own: another organization's request with the same ids
    creates its own users."""
    other = factories.make_organization(db)
    theirs = Scim(scim.client, make_token(db, other, "Entra"))
    run(scim, bulk_body(post_user("u", "ann@example.com")))
    ops = run(theirs, bulk_body(post_user("u", "ann@example.com")))
    assert ops[0]["status"] == "201"
    db.expire_all()
    count = db.scalar(select(func.count()).select_from(User).where(User.email == "ann@example.com"))
    assert count == 2
