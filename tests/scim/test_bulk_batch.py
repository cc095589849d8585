"""/scim/v2/Bulk creates POSTs of plain users together (scim.bulk._run_batch): the users,
audit events and webhook messages come out as the operations one by one would make them,
in a number of statements that does not grow with the users."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, select
from sqlalchemy.orm import Session

from tests.scim.conftest import Scim
from tests.scim.test_bulk import bulk_body, emails, post_user, run
from tests.statements import statements_sent
from userdesk.audit import service as audit
from userdesk.audit.models import AuditEvent
from userdesk.organizations.models import Organization
from userdesk.users.models import User
from userdesk.webhooks.models import WebhookEndpoint, WebhookMessage


def _posts(count: int, tag: str = "u") -> list[dict[str, Any]]:
    return [
        post_user(f"{tag}{n}", f"{tag}{n}@example.com", externalId=f"ext-{tag}{n}")
        for n in range(count)
    ]


def test_plain_posts_take_a_few_statements_whatever_their_number(
    scim: Scim, connection: Connection
) -> None:
    """Twenty users or two hundred: the same statements (no savepoint per user)."""

    def sent(count: int, tag: str) -> list[str]:
        with statements_sent(connection) as seen:
            ops = run(scim, bulk_body(*_posts(count, tag)))
        assert [op["status"] for op in ops] == ["201"] * count
        return [s for s in seen if not s.startswith(("SAVEPOINT", "RELEASE"))]

    sent(1, "warm")  # the token's first use is recorded once
    few, many = sent(20, "a"), sent(200, "b")
    assert len(many) == len(few)
    assert len(many) <= 12, many


def test_batched_users_are_made_and_audited_as_one_by_one(
    scim: Scim, db: Session, org: Organization
) -> None:
    """Each user as POST /Users makes it (externalId, created via SCIM, active), one
    user.created event each by the token's name, the chain whole; each operation answered
    with its location and version."""
    ops = run(scim, bulk_body(*_posts(5)))
    by_email = {
        user.email: user for user in db.scalars(select(User).where(User.organization_id == org.id))
    }
    for n, op in enumerate(ops):
        user = by_email[f"u{n}@example.com"]
        assert (op["bulkId"], op["status"]) == (f"u{n}", "201")
        assert op["location"].endswith(f"/scim/v2/Users/{user.id}")
        assert op["version"] == 'W/"1"'
        assert (user.external_id, user.created_via, user.status) == (f"ext-u{n}", "scim", "active")
        assert (user.first_name, user.last_name) == ("Ann", "Lee")
        fetched = scim.get(f"/Users/{user.id}")
        assert fetched.headers["ETag"] == op["version"]
        assert fetched.json()["externalId"] == f"ext-u{n}"
    events = db.execute(
        select(AuditEvent.target_id, AuditEvent.actor_name, AuditEvent.changes)
        .where(AuditEvent.organization_id == org.id, AuditEvent.action == "user.created")
        .order_by(AuditEvent.id)
    ).all()
    assert [(e.target_id, e.actor_name) for e in events] == [
        (str(by_email[f"u{n}@example.com"].id), "SCIM token Okta") for n in range(5)
    ]
    assert events[0].changes == {
        "email": "u0@example.com",
        "team": None,
        "groups": [],
        "roles": [],
        "welcome_email": False,
        "external_id": "ext-u0",
    }
    scim.create("alone@example.com")  # one by one after the batch: still one chain
    db.expire_all()
    assert audit.verify_chain(db, organization_id=org.id) == []


def test_batched_users_are_told_to_webhooks(scim: Scim, db: Session, org: Organization) -> None:
    endpoint = WebhookEndpoint(
        organization_id=org.id,
        url="https://hooks.example.com/in",
        description="",
        event_types=["user.created"],
        enabled=True,
        secret_sealed="x",
    )
    db.add(endpoint)
    db.flush()
    run(scim, bulk_body(*_posts(3)))
    messages = db.execute(
        select(WebhookMessage.event_type, WebhookMessage.user_id).where(
            WebhookMessage.endpoint_id == endpoint.id
        )
    ).all()
    users = set(db.scalars(select(User.id).where(User.organization_id == org.id)))
    assert sorted(m.event_type for m in messages) == ["user.created"] * 3
    assert {m.user_id for m in messages} == users


def test_an_email_given_twice_in_a_batch_is_taken_the_second_time(
    scim: Scim, db: Session, org: Organization
) -> None:
    ops = run(
        scim,
        bulk_body(
            post_user("a", "same@example.com"),
            post_user("b", "SAME@example.com"),
            post_user("c", "other@example.com"),
        ),
    )
    assert [op["status"] for op in ops] == ["201", "409", "201"]
    assert ops[1]["response"]["scimType"] == "uniqueness"
    assert emails(db, org) == {"same@example.com", "other@example.com"}


def test_fail_on_errors_counts_invalid_resources_among_a_batch(
    scim: Scim, db: Session, org: Organization
) -> None:
    """A resource scim2-models refuses and an email taken count alike, in order: the
    operations after the limit are not run."""
    scim.create("taken@example.com")
    ops = run(
        scim,
        bulk_body(
            post_user("a", "a@example.com"),
            post_user("b", "b@example.com", name="not an object"),
            post_user("c", "c@example.com"),
            post_user("d", "taken@example.com"),
            post_user("e", "e@example.com"),
            fail_on_errors=2,
        ),
    )
    assert [(op["bulkId"], op["status"]) for op in ops] == [
        ("a", "201"),
        ("b", "400"),
        ("c", "201"),
        ("d", "409"),
    ]
    assert emails(db, org) == {"taken@example.com", "a@example.com", "c@example.com"}


def test_a_batch_beside_other_operations_keeps_the_request_order_and_references(
    scim: Scim, db: Session, org: Organization
) -> None:
    """A deactivated user and a group between plain POSTs: each in its place, the group's
    member a user of the batch by bulkId."""
    group = {
        "method": "POST",
        "path": "/Groups",
        "bulkId": "g",
        "data": {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": "Batch",
            "members": [{"value": "bulkId:u1"}],
        },
    }
    ops = run(
        scim,
        bulk_body(
            *_posts(2),
            post_user("off", "off@example.com", active=False),
            group,
            *_posts(2, "v"),
        ),
    )
    assert [(op["bulkId"], op["status"]) for op in ops] == [
        ("u0", "201"),
        ("u1", "201"),
        ("off", "201"),
        ("g", "201"),
        ("v0", "201"),
        ("v1", "201"),
    ]
    off = db.scalar(select(User).where(User.email == "off@example.com"))
    assert off is not None
    assert off.status == "disabled"
    members = scim.get(ops[3]["location"].split("/scim/v2")[1]).json()["members"]
    assert [m["value"] for m in members] == [ops[1]["location"].rsplit("/", 1)[1]]
    assert db.scalar(select(func.count()).select_from(User).where(User.organization_id == org.id))
