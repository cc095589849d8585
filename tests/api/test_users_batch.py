"""POST /api/v1/users/batch: a host product syncs up to 1,000 accounts a request; each
item is answered by its index, the same batch twice creates nobody twice, and two
batches at once never make one person twice."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests import factories
from tests.mail.test_invitation_flow import bearer
from userdesk.access.rules import system_actor
from userdesk.audit.models import AuditEvent
from userdesk.db.session import Database
from userdesk.errors import InvalidInput
from userdesk.mail.models import OutboxMessage
from userdesk.organizations.models import Organization
from userdesk.users import batch
from userdesk.users.models import User, UserGroup, UserRole

URL = "/api/v1/users/batch"


def send(client: TestClient, key: str, users: list[Any]) -> Any:
    return client.post(URL, json={"users": users}, headers=bearer(key))


def count_users(db: Session, org: Organization) -> int:
    return (
        db.scalar(select(func.count()).select_from(User).where(User.organization_id == org.id)) or 0
    )


def count_events(db: Session, org: Organization) -> int:
    return (
        db.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.organization_id == org.id)
        )
        or 0
    )


def test_a_batch_creates_its_users_with_links_and_history_each_audited_once(
    client: TestClient, db: Session, org: Organization
) -> None:
    team = factories.make_team(db, org, "Sales")
    group = factories.make_group(db, org, "VIP")
    member = factories.role(db, org, "Member")
    key = factories.make_api_key(db, org)
    before = count_events(db, org)
    answer = send(
        client,
        key,
        [
            {
                "email": "Ann@Example.com",
                "first_name": "Ann",
                "last_name": "Lee",
                "team_id": str(team.id),
                "group_ids": [str(group.id)],
                "role_ids": [str(member.id)],
                "created_at": "2023-01-15T08:00:00Z",
            },
            {"email": "bo@example.com", "status": "pending", "created_via": "signup"},
        ],
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["created"], body["unchanged"], body["updated"], body["errors"]) == (2, 0, 0, 0)
    assert [item["index"] for item in body["items"]] == [0, 1]
    assert {item["status"] for item in body["items"]} == {"created"}
    ann = db.get_one(User, int(body["items"][0]["id"]))
    assert (ann.email, ann.email_normalized, ann.first_name, ann.status) == (
        "Ann@Example.com",
        "ann@example.com",
        "Ann",
        "active",
    )
    assert ann.team_id == team.id
    assert ann.created_at == ann.validated_at == datetime(2023, 1, 15, 8, tzinfo=UTC)
    assert db.scalars(select(UserGroup.group_id).where(UserGroup.user_id == ann.id)).all() == [
        group.id
    ]
    assert db.scalars(select(UserRole.role_id).where(UserRole.user_id == ann.id)).all() == [
        member.id
    ]
    bo = db.get_one(User, int(body["items"][1]["id"]))
    assert (bo.status, bo.created_via) == ("pending", "signup")
    assert count_events(db, org) == before + 2
    event = db.scalars(
        select(AuditEvent).where(
            AuditEvent.target_type == "user", AuditEvent.target_id == str(ann.id)
        )
    ).one()
    assert event.action == "user.created"
    assert event.changes["created_at"] == "2023-01-15T08:00:00+00:00"
    assert event.changes["team"] == "Sales"
    read = client.get(f"/api/v1/users/{ann.id}", headers=bearer(key)).json()
    assert read["created_at"].startswith("2023-01-15T08:00:00")
    assert db.scalar(select(func.count()).select_from(OutboxMessage)) == 0  # no welcome email


def test_the_same_batch_twice_is_all_unchanged_the_second_time(
    client: TestClient, db: Session, org: Organization
) -> None:
    team = factories.make_team(db, org)
    key = factories.make_api_key(db, org)
    people = [
        {
            "email": f"Person{n}@Example.com",
            "first_name": f"P{n}",
            "team_id": str(team.id),
            "group_ids": [],
            "created_at": "2022-06-01",
        }
        for n in range(20)
    ]
    first = send(client, key, people).json()
    users, events = count_users(db, org), count_events(db, org)
    second = send(client, key, people).json()
    assert second["unchanged"] == 20
    assert [item["status"] for item in second["items"]] == ["unchanged"] * 20
    assert [item["id"] for item in second["items"]] == [item["id"] for item in first["items"]]
    assert count_users(db, org) == users
    assert count_events(db, org) == events  # nothing recorded the second time
    lower = [{**person, "email": person["email"].lower()} for person in people]
    assert send(client, key, lower).json()["unchanged"] == 20  # the email as normalized


def test_an_existing_user_whose_fields_differ_is_updated_as_patch_would(
    client: TestClient, db: Session, org: Organization
) -> None:
    team = factories.make_team(db, org)
    known = factories.make_user(db, org, email="known@example.com", first_name="Old")
    version = known.version
    key = factories.make_api_key(db, org)
    answer = send(
        client,
        key,
        [
            {
                "email": "KNOWN@example.com",
                "first_name": "New",
                "team_id": str(team.id),
                "created_at": "2021-02-03T04:05:06Z",
                "status": "pending",  # counts for someone new only
            }
        ],
    ).json()
    assert answer["items"] == [
        {"index": 0, "status": "updated", "id": str(known.id), "error": None}
    ]
    db.expire_all()
    assert (known.first_name, known.team_id, known.status) == ("New", team.id, "active")
    assert known.created_at == datetime(2021, 2, 3, 4, 5, 6, tzinfo=UTC)
    assert known.version > version
    updates = db.scalars(
        select(AuditEvent.changes).where(
            AuditEvent.target_id == str(known.id), AuditEvent.action == "user.updated"
        )
    ).all()
    changed = {name for changes in updates for name in changes}
    assert {"first_name", "team", "created_at"} <= changed
    again = send(client, key, [{"email": "known@example.com", "first_name": "New"}]).json()
    assert again["items"][0]["status"] == "unchanged"


def test_bad_items_are_answered_by_index_and_the_others_created(
    client: TestClient, db: Session, org: Organization
) -> None:
    key = factories.make_api_key(db, org)
    items: list[Any] = [
        {"email": "good@example.com"},
        "not an object",
        42,
        None,
        ["email", "x@example.com"],
        {"first_name": "No Email"},
        {"email": "not-an-email"},
        {"email": "long@example.com", "first_name": "A" * 101},
        {"email": "future@example.com", "created_at": "2999-01-01"},
        {"email": "naive@example.com", "created_at": "2024-01-01T10:00:00"},
        {"email": "team@example.com", "team_id": "999999"},
        {"email": "group@example.com", "group_ids": ["x1"]},
        {"email": "GOOD@example.com"},  # the same email as item 0
        {"email": "flag@example.com", "send_welcome_email": "yes"},
        {"email": "also-good@example.com", "created_at": "2020-01-01"},
    ]
    answer = send(client, key, items)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    fates = {item["index"]: item for item in body["items"]}
    assert len(fates) == len(items)
    assert fates[0]["status"] == fates[14]["status"] == "created"
    errors = {
        index: (fate["error"]["field"], fate["error"]["message"])
        for index, fate in fates.items()
        if fate["status"] == "error"
    }
    assert set(errors) == set(range(1, 14))
    assert all(fates[i]["id"] is None for i in errors)
    assert errors[1] == ("users[1]", "is a string, not an object")
    assert errors[2] == ("users[2]", "is a number, not an object")
    assert errors[3] == ("users[3]", "is null, not an object")
    assert errors[4] == ("users[4]", "is an array, not an object")
    assert errors[5][0] == "email"
    assert errors[6][0] == "email"
    assert errors[7] == ("first_name", "is longer than 100 characters")
    assert errors[8][0] == "created_at"
    assert "'2999-01-01' is in the future" in errors[8][1]
    assert errors[9][0] == "created_at"
    assert errors[10] == ("team_id", "'999999' is not a team")
    assert errors[11][0] == "group_ids"
    assert errors[12] == ("email", "'GOOD@example.com' is also item 0")
    assert errors[13][0] == "send_welcome_email"
    assert body["errors"] == 13
    assert count_users(db, org) == 2


def test_a_nul_anywhere_is_refused_by_the_api_naming_the_item(
    client: TestClient, db: Session, org: Organization
) -> None:
    """Text with a NUL is refused before any service sees it, as everywhere in the API."""
    key = factories.make_api_key(db, org)
    items = [{"email": "ok@example.com"}, {"email": "nul@example.com", "first_name": "A\x00B"}]
    refused = send(client, key, items)
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["field"] == "users[1].first_name"
    assert count_users(db, org) == 0


def test_more_than_a_thousand_items_or_no_list_is_refused_naming_the_limit(
    client: TestClient, db: Session, org: Organization
) -> None:
    key = factories.make_api_key(db, org)
    too_many = send(client, key, [{"email": f"u{n}@example.com"} for n in range(1001)])
    assert too_many.status_code == 400
    assert "1000" in too_many.text
    started = time.monotonic()
    huge = send(client, key, [{}] * 200_000)
    assert huge.status_code == 400
    assert time.monotonic() - started < 5
    for body in ({}, {"users": "all"}, {"users": {"email": "a@example.com"}}, []):
        refused = client.post(URL, json=body, headers=bearer(key))
        assert refused.status_code == 400, body
    assert count_users(db, org) == 0
    empty = send(client, key, [])
    assert empty.json() == {"items": [], "created": 0, "unchanged": 0, "updated": 0, "errors": 0}


def test_the_service_refuses_more_than_the_limit_itself(db: Session, org: Organization) -> None:
    with pytest.raises(InvalidInput) as refused:
        batch.sync_users(
            db,
            actor=system_actor(org.id),
            items=[{"email": f"u{n}@example.com"} for n in range(1001)],
            base_url="http://testserver",
        )
    assert "at most 1,000" in refused.value.fields["users"]


def test_an_agent_may_not_sync_users(client: TestClient, db: Session, org: Organization) -> None:
    key = factories.make_api_key(db, org, "Agent")
    refused = send(client, key, [{"email": "a@example.com"}])
    assert refused.status_code == 403
    assert count_users(db, org) == 0


def test_a_team_administrator_syncs_into_their_team_only(
    client: TestClient, db: Session, org: Organization
) -> None:
    own, other = factories.make_team(db, org, "Own"), factories.make_team(db, org, "Other")
    mine = factories.make_user(db, org, email="mine@example.com", team=own)
    theirs = factories.make_user(db, org, email="theirs@example.com", team=other)
    administrator = factories.role(db, org, "Administrator")
    key = factories.make_api_key(db, org, "Team Administrator", team=own)
    body = send(
        client,
        key,
        [
            {"email": "new@example.com"},
            {"email": "elsewhere@example.com", "team_id": str(other.id)},
            {"email": "theirs@example.com"},
            {"email": "mine@example.com"},
            {"email": "boss@example.com", "role_ids": [str(administrator.id)]},
        ],
    ).json()
    fates = [item["status"] for item in body["items"]]
    assert fates == ["created", "error", "error", "unchanged", "error"]
    new = db.get_one(User, int(body["items"][0]["id"]))
    assert new.team_id == own.id
    assert body["items"][1]["error"]["field"] == "team_id"
    assert body["items"][1]["error"]["code"] == "permission_denied"
    assert body["items"][2]["error"] == {
        "field": "email",
        "message": "'theirs@example.com' is taken",
        "code": "user.email_taken",
    }
    assert body["items"][3]["id"] == str(mine.id)
    assert body["items"][4]["error"]["field"] == "role_ids"
    db.expire_all()
    assert theirs.team_id == other.id
    assert db.scalar(select(User).where(User.email_normalized == "elsewhere@example.com")) is None


def test_welcome_emails_go_only_where_asked(
    client: TestClient, db: Session, org: Organization
) -> None:
    key = factories.make_api_key(db, org)
    send(
        client,
        key,
        [
            {"email": "hello@example.com", "send_welcome_email": True},
            {"email": "quiet@example.com"},
        ],
    )
    recipients = db.scalars(select(OutboxMessage.recipient)).all()
    assert recipients == ["hello@example.com"]


def test_an_email_taken_since_the_batch_looked_is_answered_as_the_user_there(
    db: Session, org: Organization, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The insert skips an email another transaction created after the batch read the
    organization's emails: the item is answered as that user, never a 500."""
    real = batch._existing
    calls = []

    def stale(*args: Any) -> Any:
        calls.append(args)
        return {} if len(calls) == 1 else real(*args)

    monkeypatch.setattr(batch, "_existing", stale)
    there = factories.make_user(db, org, email="raced@example.com", first_name="Ray")
    answer = batch.sync_users(
        db,
        actor=system_actor(org.id),
        items=[{"email": "raced@example.com", "first_name": "Ray"}, {"email": "new@example.com"}],
        base_url="http://testserver",
    )
    first = answer["items"][0]
    assert (first["status"], first["id"]) == ("unchanged", str(there.id))
    assert answer["items"][1]["status"] == "created"
    assert count_users(db, org) == 2


def test_two_identical_batches_at_once_make_each_person_once(own_database: Database) -> None:
    """On PostgreSQL the two transactions overlap (both look before either inserts); on
    SQLite writers take turns. Either way one creates, the other answers unchanged."""
    with own_database.unit_of_work() as session:
        org_id = factories.make_organization(session).id
    people = [{"email": f"twin{n}@example.com", "first_name": f"T{n}"} for n in range(50)]
    overlap = own_database.engine.dialect.name == "postgresql"
    looked = threading.Barrier(2, timeout=10)
    local = threading.local()
    real = batch._existing

    def existing(*args: Any) -> Any:
        found = real(*args)
        if overlap and not getattr(local, "looked", False):  # each one's first look
            local.looked = True
            looked.wait()
        return found

    def run() -> dict[str, Any]:
        if overlap:  # plain transactions: the process's queue of writers would serialize them
            with own_database.sessions() as session, session.begin():
                return batch.sync_users(
                    session, actor=system_actor(org_id), items=people, base_url="http://t"
                )
        with own_database.unit_of_work() as session:
            return batch.sync_users(
                session, actor=system_actor(org_id), items=people, base_url="http://t"
            )

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(batch, "_existing", existing)
        with ThreadPoolExecutor(2) as pool:
            answers = [future.result() for future in [pool.submit(run), pool.submit(run)]]
    assert sorted((a["created"], a["unchanged"], a["errors"]) for a in answers) == [
        (0, 50, 0),
        (50, 0, 0),
    ]
    ids = [[item["id"] for item in a["items"]] for a in answers]
    assert ids[0] == ids[1]
    with own_database.sessions() as session:
        made = session.scalar(
            select(func.count()).select_from(User).where(User.organization_id == org_id)
        )
        events = session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.organization_id == org_id, AuditEvent.action == "user.created")
        )
    assert (made, events) == (50, 50)
