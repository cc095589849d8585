"""/scim/v2 under attack: other organizations, privilege, hostile input never a 500."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from tests import factories
from tests.scim.conftest import USER_SCHEMA, Scim, make_token, patch_body
from userdesk.audit.models import AuditEvent
from userdesk.organizations.models import Organization
from userdesk.users.models import User

GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
SEARCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"


def _user(db: Session, user_id: int) -> User:
    db.expire_all()
    return db.get_one(User, user_id)


def _scim_error(response: Any, status: int, scim_type: str | None = None) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    if scim_type is not None:
        assert body.get("scimType") == scim_type, body


def test_a_token_sees_and_touches_nothing_of_another_organization(scim: Scim, db: Session) -> None:
    """A user or group of organization B is not found by A's token, by id or by filter."""
    other = factories.make_organization(db, "other-org")
    stranger = factories.make_user(db, other, email="stranger@example.com")
    foreign_group = factories.make_group(db, other, "Foreign")
    assert scim.get(f"/Users/{stranger.id}").status_code == 404
    assert (
        scim.send(
            "PATCH",
            f"/Users/{stranger.id}",
            patch_body({"op": "replace", "value": {"active": False}}),
        ).status_code
        == 404
    )
    assert scim.send("DELETE", f"/Users/{stranger.id}").status_code == 404
    assert scim.get(f"/Groups/{foreign_group.id}").status_code == 404
    found = scim.get("/Users", filter='userName eq "stranger@example.com"').json()
    assert found["totalResults"] == 0
    found = scim.send(
        "POST", "/.search", {"schemas": [SEARCH_SCHEMA], "filter": f'id eq "{stranger.id}"'}
    ).json()
    assert found["totalResults"] == 0
    group = scim.send(
        "POST",
        "/Groups",
        {
            "schemas": [GROUP_SCHEMA],
            "displayName": "Mine",
            "members": [{"value": str(stranger.id)}],
        },
    )
    _scim_error(group, 400, "invalidValue")
    mine = scim.send("POST", "/Groups", {"schemas": [GROUP_SCHEMA], "displayName": "Mine"})
    added = scim.send(
        "PATCH",
        f"/Groups/{mine.json()['id']}",
        patch_body({"op": "add", "path": "members", "value": [{"value": str(stranger.id)}]}),
    )
    _scim_error(added, 400, "invalidValue")
    # The same email is free in this organization: taken elsewhere reveals nothing.
    scim.create("stranger@example.com")
    assert _user(db, stranger.id).status == "active"


def test_an_administrators_email_and_external_id_are_out_of_a_tokens_reach(
    scim: Scim, db: Session, org: Organization
) -> None:
    """A token cannot take over an Administrator (email change, then a password reset)."""
    admin = factories.make_admin(db, org, email="boss@example.com")
    for operation in (
        {"op": "replace", "path": "userName", "value": "attacker@evil.example"},
        {"op": "replace", "path": "externalId", "value": "attacker-1"},
        {"op": "replace", "path": "name.givenName", "value": "Mallory"},
    ):
        response = scim.send("PATCH", f"/Users/{admin.id}", patch_body(operation))
        _scim_error(response, 403)
    assert scim.send("DELETE", f"/Users/{admin.id}").status_code == 403
    after = _user(db, admin.id)
    assert (after.email, after.external_id, after.status) == ("boss@example.com", None, "active")


@pytest.mark.parametrize(
    "path",
    [
        "/Users/%C2%B2",  # "²".isdigit() is true, int("²") is not
        "/Users/99999999999999999999999",
        "/Groups/%C2%B2",
        "/Groups/99999999999999999999999",
    ],
)
def test_an_odd_id_is_a_404_not_a_500(scim: Scim, path: str) -> None:
    _scim_error(scim.get(path), 404)
    body = patch_body({"op": "replace", "path": "externalId", "value": "x"})
    _scim_error(scim.send("PATCH", path, body), 404)
    _scim_error(scim.send("DELETE", path), 404)


@pytest.mark.parametrize(
    "params",
    [
        {"filter": 'id eq "99999999999999999999999"'},
        {"filter": 'id eq "²"'},
        {"filter": 'userName eq "a\u0000b"'},
        {"filter": 'name.givenName co "a\u0000"'},
        {"filter": "(" * 300 + 'userName eq "a"' + ")" * 300},
        {"filter": " or ".join(['userName eq "a"'] * 2000)},
        {"filter": 'meta.created gt "99999-01-01T00:00:00Z"'},
        {"startIndex": "99999999999999999999999"},
        {"startIndex": "-5"},
        {"count": "-5"},
        {"count": "99999999999999999999999"},
        {"sortBy": "password"},
        {"attributes": ",".join(f"a{n}" for n in range(3000))},
    ],
)
def test_hostile_list_parameters_are_a_scim_4xx(scim: Scim, params: dict[str, str]) -> None:
    scim.create("one@example.com")
    response = scim.get("/Users", **params)
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        _scim_error(response, response.status_code)
    assert scim.get("/Groups", **params).status_code < 500


@pytest.mark.parametrize(
    "extra",
    [
        {"externalId": "x" * 300},
        {"externalId": "a\u0000b"},
        {"externalId": 12},
        {"name": {"givenName": "a\u0000b"}},
        {"name": {"givenName": "x" * 5000}},
        {"name": "Ann"},
        {"userName": ["a@example.com"]},
        {"userName": "a\u0000b@example.com"},
    ],
)
def test_hostile_values_are_a_scim_400(scim: Scim, extra: dict[str, Any]) -> None:
    body = {"schemas": [USER_SCHEMA], "userName": "val@example.com", **extra}
    _scim_error(scim.send("POST", "/Users", body), 400)


def test_a_lone_surrogate_is_a_400(scim: Scim) -> None:
    raw = b'{"schemas": ["' + USER_SCHEMA.encode() + b'"], "userName": "s@example.com",'
    raw += b' "externalId": "\\ud800"}'
    response = scim.client.post("/scim/v2/Users", content=raw, headers=scim.headers())
    _scim_error(response, 400)


def test_deep_json_is_a_400(scim: Scim) -> None:
    raw = b"[" * 100_000 + b"]" * 100_000
    response = scim.client.post("/scim/v2/Users", content=raw, headers=scim.headers())
    _scim_error(response, 400, "invalidSyntax")


def test_a_huge_body_is_a_413(scim: Scim) -> None:
    raw = b'{"userName": "' + b"a" * (3 * 1024 * 1024) + b'"}'
    response = scim.client.post("/scim/v2/Users", content=raw, headers=scim.headers())
    _scim_error(response, 413)


def test_hundreds_of_patch_operations_are_a_400(scim: Scim) -> None:
    created = scim.create("ops@example.com")
    ops = [{"op": "replace", "path": "name.givenName", "value": f"n{n}"} for n in range(1001)]
    response = scim.send("PATCH", f"/Users/{created['id']}", patch_body(*ops))
    _scim_error(response, 400)


@pytest.mark.parametrize("tag", ['W/"', "garbage", 'W/"abc", *x', ","])
def test_an_invalid_if_match_is_a_412_not_a_500(scim: Scim, tag: str) -> None:
    created = scim.create("etag@example.com")
    body = patch_body({"op": "replace", "path": "name.givenName", "value": "New"})
    response = scim.client.patch(
        f"/scim/v2/Users/{created['id']}",
        json=body,
        headers=scim.headers({"If-Match": tag.encode("utf-8").decode("latin-1")}),
    )
    _scim_error(response, 412)


def test_like_wildcards_in_co_sw_ew_are_literal(scim: Scim) -> None:
    scim.create("under_score@example.com", given="Pe%ter")
    scim.create("underxscore@example.com", given="Peter")
    for expression, wanted in (
        ('userName co "r_s"', 1),
        ('userName sw "under_"', 1),
        ('name.givenName co "e%t"', 1),
        ('name.givenName ew "%ter"', 1),
        ('userName co "%"', 0),
    ):
        found = scim.get("/Users", filter=expression).json()
        assert found["totalResults"] == wanted, expression


def test_dates_compare_as_instants_whatever_the_offset(scim: Scim, db: Session) -> None:
    created = scim.create("dated@example.com")
    moment = _user(db, int(created["id"])).created_at
    from datetime import timedelta, timezone

    ahead = moment.astimezone(timezone(timedelta(hours=5)))
    before = (ahead - timedelta(minutes=1)).isoformat()
    after = (ahead + timedelta(minutes=1)).isoformat()
    assert scim.get("/Users", filter=f'meta.created gt "{before}"').json()["totalResults"] == 1
    assert scim.get("/Users", filter=f'meta.created lt "{after}"').json()["totalResults"] == 1
    assert scim.get("/Users", filter=f'meta.created gt "{after}"').json()["totalResults"] == 0


def test_user_name_is_case_insensitive_and_external_id_case_exact(scim: Scim) -> None:
    scim.create("Case@Example.com", externalId="AbC")
    assert scim.get("/Users", filter='userName eq "CASE@example.COM"').json()["totalResults"] == 1
    assert scim.get("/Users", filter='externalId eq "abc"').json()["totalResults"] == 0
    assert scim.get("/Users", filter='externalId eq "AbC"').json()["totalResults"] == 1


def test_every_scim_change_is_audited_with_the_tokens_name(scim: Scim, db: Session) -> None:
    created = scim.create("audited@example.com", externalId="e-1")
    scim.send(
        "PATCH",
        f"/Users/{created['id']}",
        patch_body({"op": "replace", "path": "externalId", "value": "e-2"}),
    )
    group = scim.send(
        "POST",
        "/Groups",
        {
            "schemas": [GROUP_SCHEMA],
            "displayName": "Audited",
            "members": [{"value": created["id"]}],
        },
    )
    assert group.status_code == 201
    events = db.scalars(select(AuditEvent).where(AuditEvent.actor_name.like("SCIM token%")))
    actions = {event.action for event in events}
    assert {"user.created", "user.updated"} <= actions, actions


def test_a_revoked_token_is_refused_at_once(scim: Scim, db: Session, org: Organization) -> None:
    from userdesk.access.rules import system_actor
    from userdesk.scim import tokens

    secret = make_token(db, org, "Doomed")
    row = db.scalars(select(tokens.ScimToken).where(tokens.ScimToken.name == "Doomed")).one()
    assert secret not in row.token_hash
    tokens.revoke_token(db, actor=system_actor(org.id, "tests"), token_id=row.id)
    db.flush()
    response = scim.client.get("/scim/v2/Users", headers={"Authorization": f"Bearer {secret}"})
    _scim_error(response, 401)


def test_the_external_id_index_is_partial_and_answers_the_eq_filter(
    scim: Scim, db: Session
) -> None:
    """Users without an externalId are not in the index; `externalId eq` still reads it."""
    dialect = db.get_bind().dialect.name
    if dialect == "sqlite":
        definition = db.scalar(
            text("SELECT sql FROM sqlite_master WHERE name = 'ix_users_org_external_id'")
        )
    else:
        definition = db.scalar(
            text("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_users_org_external_id'")
        )
    assert "external_id IS NOT NULL" in str(definition), definition
    created = scim.create("plan@example.com", externalId="p-1")
    found = scim.get("/Users", filter='externalId eq "p-1"').json()
    assert [user["id"] for user in found["Resources"]] == [created["id"]]
    if dialect == "sqlite":
        from userdesk.scim.filters import users_where

        query = select(User.id).where(User.organization_id == 1, users_where('externalId eq "p-1"'))
        compiled = query.compile(db.get_bind(), compile_kwargs={"literal_binds": True})
        plan = db.execute(text(f"EXPLAIN QUERY PLAN {compiled}")).all()
        assert "ix_users_org_external_id" in " ".join(str(row) for row in plan), plan


def test_two_creations_of_one_email_at_once_are_a_201_and_a_409(
    scim: Scim, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The loser of a race (its check ran before the winner's row was written) gets a 409
    uniqueness from the unique index, never a 500, and its transaction stays usable."""
    from userdesk.users import service as users_service

    scim.create("race@example.com")
    monkeypatch.setattr(users_service, "find_by_email", lambda *args, **kwargs: None)
    again = scim.send("POST", "/Users", {"schemas": [USER_SCHEMA], "userName": "race@example.com"})
    _scim_error(again, 409, "uniqueness")
    assert scim.get("/Users", filter='userName eq "race@example.com"').json()["totalResults"] == 1


def test_a_token_cannot_enable_a_trashed_user_nor_make_anyone_an_admin(
    scim: Scim, db: Session, org: Organization
) -> None:
    trashed = factories.make_user(db, org, email="trashed@example.com", status="trashed")
    member = factories.make_user(db, org, email="member@example.com")
    enable = patch_body({"op": "replace", "value": {"active": True}})
    scim.send("PATCH", f"/Users/{trashed.id}", enable)
    assert _user(db, trashed.id).status == "trashed"
    roles = patch_body({"op": "add", "path": "roles", "value": [{"value": "Administrator"}]})
    scim.send("PATCH", f"/Users/{member.id}", roles)
    put = {
        "schemas": [USER_SCHEMA],
        "userName": "member@example.com",
        "roles": [{"value": "Administrator", "primary": True}],
    }
    scim.send("PUT", f"/Users/{member.id}", put)
    from userdesk.access import service as access

    assert {role.name for role in access.roles_of(db, _user(db, member.id))} == {"Member"}


def test_scim_changes_fire_webhooks_as_console_changes_do(
    scim: Scim, db: Session, org: Organization, settings: Any
) -> None:
    from tests.webhooks.conftest import make_endpoint
    from userdesk.webhooks.models import WebhookMessage

    endpoint = make_endpoint(db, settings, org.id, "https://hooks.example.com/in", "s3cret")
    created = scim.create("hooked@example.com")
    scim.send(
        "PATCH",
        f"/Users/{created['id']}",
        patch_body(
            {"op": "replace", "path": "externalId", "value": "h-2"},
            {"op": "replace", "value": {"active": False}},
        ),
    )
    types = [
        m.event_type
        for m in db.scalars(
            select(WebhookMessage)
            .where(WebhookMessage.endpoint_id == endpoint.id)
            .order_by(WebhookMessage.id)
        )
    ]
    assert types[0] == "user.created", types
    assert {"user.updated", "user.disabled"} <= set(types), types


def test_a_write_reads_its_user_and_group_locked_so_if_match_races_take_turns(
    scim: Scim, db: Session
) -> None:
    """PUT, PATCH and DELETE read the row FOR UPDATE (PostgreSQL; SQLite's writer holds the
    whole database): of two writers sending one If-Match, the second waits for the first,
    then sees its version and gets a 412 instead of overwriting it."""
    from sqlalchemy import event

    created = scim.create("locked@example.com")
    group = scim.send("POST", "/Groups", {"schemas": [GROUP_SCHEMA], "displayName": "Locked"})
    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(" ".join(statement.split()))

    bind = db.connection()
    event.listen(bind, "before_cursor_execute", seen)
    try:
        first = scim.get(f"/Users/{created['id']}").headers["etag"]
        rename = patch_body({"op": "replace", "path": "name.givenName", "value": "One"})
        assert (
            scim.send("PATCH", f"/Users/{created['id']}", rename, {"If-Match": first}).status_code
            == 200
        )
        again = patch_body({"op": "replace", "path": "name.givenName", "value": "Two"})
        stale = scim.send("PATCH", f"/Users/{created['id']}", again, {"If-Match": first})
        _scim_error(stale, 412)
        scim.send(
            "PATCH",
            f"/Groups/{group.json()['id']}",
            patch_body({"op": "replace", "path": "displayName", "value": "Locked 2"}),
        )
    finally:
        event.remove(bind, "before_cursor_execute", seen)
    assert _user(db, int(created["id"])).first_name == "One"
    if bind.dialect.name == "postgresql":
        locked = [s for s in statements if s.endswith("FOR UPDATE OF users")]
        assert locked, statements
        assert [s for s in statements if s.endswith("FOR UPDATE OF groups")], statements


def test_a_group_with_tens_of_thousands_of_members_is_a_400_not_a_500(scim: Scim) -> None:
    members = [{"value": str(n)} for n in range(1, 40_001)]
    body = {"schemas": [GROUP_SCHEMA], "displayName": "Crowd", "members": members}
    refused = scim.send("POST", "/Groups", body)
    _scim_error(refused, 400, "invalidValue")
    assert "and 39990 more" in refused.json()["detail"]
    assert len(refused.content) < 2000
    created = scim.send("POST", "/Groups", {"schemas": [GROUP_SCHEMA], "displayName": "Crowd"})
    add = patch_body({"op": "add", "path": "members", "value": members})
    _scim_error(scim.send("PATCH", f"/Groups/{created.json()['id']}", add), 400, "invalidValue")


def test_a_groups_external_id_longer_than_its_column_is_a_400(scim: Scim) -> None:
    body = {"schemas": [GROUP_SCHEMA], "displayName": "Long", "externalId": "x" * 300}
    _scim_error(scim.send("POST", "/Groups", body), 400, "invalidValue")


def test_a_token_does_not_change_the_email_of_a_user_who_holds_as_much_as_it_does(
    scim: Scim, db: Session, org: Organization
) -> None:
    """An email change leads to a password reset: it takes holding strictly more than the
    user (as for an admin); a user holding the provisioning role's very permissions keeps
    their email, while their name may still be provisioned."""
    from userdesk.access.models import Role, RolePermission
    from userdesk.scim.tokens import PROVISIONING
    from userdesk.users.models import UserRole

    peer_role = Role(organization_id=org.id, name="Provisioner", builtin=False)
    db.add(peer_role)
    db.flush()
    for permission in PROVISIONING:
        db.add(RolePermission(organization_id=org.id, role_id=peer_role.id, permission=permission))
    peer = factories.make_user(db, org, email="peer@example.com", roles=())
    db.add(UserRole(organization_id=org.id, user_id=peer.id, role_id=peer_role.id))
    member = factories.make_user(db, org, email="plain@example.com")
    db.flush()
    takeover = patch_body({"op": "replace", "path": "userName", "value": "evil@example.com"})
    _scim_error(scim.send("PATCH", f"/Users/{peer.id}", takeover), 403)
    rename = patch_body({"op": "replace", "path": "name.givenName", "value": "Pat"})
    assert scim.send("PATCH", f"/Users/{peer.id}", rename).status_code == 200
    moved = patch_body({"op": "replace", "path": "userName", "value": "moved@example.com"})
    assert scim.send("PATCH", f"/Users/{member.id}", moved).status_code == 200
    after = _user(db, peer.id)
    assert (after.email, after.pending_email, after.first_name) == ("peer@example.com", None, "Pat")
