"""Every change to a user becomes webhook messages in the change's own transaction: of the
right type, once, for the endpoints of its organization that want it, with the user as
the API shows them and the change."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jsonschema_rs
import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests import factories
from tests.conftest import BoundDatabase
from tests.mail.test_invitation_flow import outbox_link
from tests.statements import statements_sent
from userdesk.access import service as access
from userdesk.access.rules import Actor, system_actor
from userdesk.activity.models import ActivityEvent
from userdesk.audit import service as audit
from userdesk.auth.service import issue_user_token
from userdesk.churn import scoring
from userdesk.config import Settings
from userdesk.db.base import utcnow
from userdesk.errors import InvalidInput, PermissionDenied
from userdesk.imports import service as imports
from userdesk.invitations import service as invitations
from userdesk.invitations.models import Invitation
from userdesk.invitations.schemas import InvitationCreate, Person
from userdesk.jobs import service as jobs
from userdesk.organizations import service as organizations
from userdesk.organizations.models import Organization
from userdesk.signup import service as signup
from userdesk.users import lifecycle
from userdesk.users import service as users
from userdesk.users.models import User
from userdesk.users.rules import Action
from userdesk.users.schemas import UserCreate, UserUpdate
from userdesk.webhooks import catalog, signing
from userdesk.webhooks import events as webhook_events
from userdesk.webhooks.models import WebhookEndpoint, WebhookMessage

BASE = "http://testserver"


def make_endpoint(
    db: Session,
    settings: Settings,
    org: Organization,
    *,
    types: list[str] | None = None,
    enabled: bool = True,
) -> WebhookEndpoint:
    endpoint = WebhookEndpoint(
        organization_id=org.id,
        url="https://host.example/hooks",
        event_types=types or [],
        enabled=enabled,
        secret_sealed=signing.seal_secret(settings, signing.new_secret(), org.id),
    )
    db.add(endpoint)
    db.flush()
    return endpoint


def sent(db: Session, endpoint: WebhookEndpoint, after: int = 0) -> list[WebhookMessage]:
    """ENDPOINT's messages with an id above AFTER, in order."""
    return list(
        db.scalars(
            select(WebhookMessage)
            .where(WebhookMessage.endpoint_id == endpoint.id, WebhookMessage.id > after)
            .order_by(WebhookMessage.id)
        )
    )


def last_id(db: Session) -> int:
    return db.scalar(select(func.max(WebhookMessage.id))) or 0


def body(message: WebhookMessage) -> dict[str, Any]:
    parsed: dict[str, Any] = orjson.loads(message.body)
    return parsed


@dataclass
class World:
    db: Session
    org: Organization
    admin: User
    actor: Actor

    def user(self, **kwargs: Any) -> User:
        return factories.make_user(self.db, self.org, **kwargs)

    def apply(self, user: User, action: Action, **given: Any) -> int:
        lifecycle.apply(
            self.db,
            actor=self.actor,
            user_id=user.id,
            action=action,
            given=lifecycle.ActionInput(**given),
            base_url=BASE,
        )
        return user.id

    def invite(self, email: str) -> Invitation:
        data = InvitationCreate(people=[Person(email=email, first_name="Ivy")])
        created = invitations.invite(self.db, actor=self.actor, data=data, base_url=BASE)
        return self.db.get_one(Invitation, int(created.created[0].id))


@pytest.fixture
def world(db: Session, org: Organization) -> World:
    admin = factories.make_admin(db, org)
    return World(db, org, admin, access.actor_for_user(db, admin))


Act = Callable[[], int]  # makes the change; the id of the user it is about


def _created(w: World) -> Act:
    data = UserCreate(email="new@example.com", first_name="Nia")
    return lambda: users.add_user(w.db, actor=w.actor, data=data, base_url=BASE)[0].id


def _invited(w: World) -> Act:
    return lambda: w.invite("ivy@example.com").user_id


def _activated(w: World) -> Act:
    user = w.user(status="pending", password=None)
    return lambda: w.apply(user, Action.ACTIVATE)


def _updated(w: World) -> Act:
    user = w.user(first_name="Old")
    return lambda: (
        users.update_user(
            w.db,
            actor=w.actor,
            user_id=user.id,
            data=UserUpdate(first_name="New"),
            version=user.version,
            base_url=BASE,
        ).id
    )


def _roles_changed(w: World) -> Act:
    user = w.user()
    agent = factories.role(w.db, w.org, "Agent")
    return lambda: (
        users.update_user(
            w.db,
            actor=w.actor,
            user_id=user.id,
            data=UserUpdate(role_ids=[str(agent.id)]),
            version=user.version,
            base_url=BASE,
        ).id
    )


def _validated(w: World) -> Act:
    user = w.user()
    return lambda: w.apply(user, Action.VALIDATE)


def _invalidated(w: World) -> Act:
    user = w.user()
    user.validated_at = utcnow()
    return lambda: w.apply(user, Action.INVALIDATE)


def _disabled(w: World) -> Act:
    user = w.user()
    return lambda: w.apply(user, Action.DISABLE, reason="Left the organization")


def _enabled(w: World) -> Act:
    user = w.user()
    w.apply(user, Action.DISABLE, reason="Left the organization")
    return lambda: w.apply(user, Action.ENABLE)


def _banned(w: World) -> Act:
    user = w.user()
    return lambda: w.apply(user, Action.BAN, reason="Spam", days=3)


def _unbanned(w: World) -> Act:
    user = w.user()
    w.apply(user, Action.BAN, reason="Spam", days=3)
    return lambda: w.apply(user, Action.UNBAN)


def _trashed(w: World) -> Act:
    user = w.user()
    return lambda: w.apply(user, Action.TRASH)


def _restored(w: World) -> Act:
    user = w.user()
    w.apply(user, Action.TRASH)
    return lambda: w.apply(user, Action.RESTORE)


def _deleted(w: World) -> Act:
    user = w.user()
    return lambda: w.apply(user, Action.DELETE, confirm_email=user.email)


def _reactivated(w: World) -> Act:
    user = w.user()
    w.apply(user, Action.DELETE, confirm_email=user.email)
    return lambda: w.apply(user, Action.REACTIVATE)


def _email_verified(w: World) -> Act:
    user = w.user()
    user.email_verified_at = None
    token, _ = issue_user_token(
        w.db, user=user, purpose=users.VERIFY_EMAIL, ttl=users.VERIFICATION_LINK_TTL
    )
    return lambda: users.verify_email(w.db, token=token).id


def _sessions_revoked(w: World) -> Act:
    user = w.user()
    return lambda: w.apply(user, Action.REVOKE_SESSIONS)


def _resent(w: World) -> Act:
    invitation = w.invite("ivy@example.com")
    return lambda: (
        invitations.resend(w.db, actor=w.actor, invitation_id=invitation.id, base_url=BASE).user_id
    )


def _revoked(w: World) -> Act:
    invitation = w.invite("ivy@example.com")
    return lambda: invitations.revoke(w.db, actor=w.actor, invitation_id=invitation.id).user_id


def _accepted(w: World) -> Act:
    w.invite("ivy@example.com")
    token = outbox_link(w.db, "ivy@example.com", "/invite/").rsplit("/", 1)[1]
    return lambda: invitations.accept(w.db, token=token, password=factories.PASSWORD).id


def _churn_level_changed(w: World) -> Act:
    user = w.user()
    user.created_at = utcnow() - timedelta(days=300)
    now = utcnow()
    for age in range(40, 120, 3):  # active long ago, quiet of late
        w.db.add(
            ActivityEvent(
                organization_id=w.org.id,
                user_id=user.id,
                type="login",
                occurred_at=now - timedelta(days=age),
                properties={},
            )
        )
    w.db.flush()

    def score() -> int:
        job = scoring.start(w.db, actor=system_actor(w.org.id, "tests"))
        while not jobs.step(w.db, job=job, base_url=BASE):
            pass
        assert job.status == "done", job.problems
        return user.id

    return score


# Each event type: what makes it (the real service call), and what its data says of the
# change besides the user (a part of it).
SCENARIOS: dict[str, tuple[Callable[[World], Act], dict[str, Any]]] = {
    "user.created": (_created, {"first_name": "Nia", "before": {}, "after": {}}),
    "user.invited": (_invited, {"status": "pending"}),
    "invitation.sent": (_invited, {"status": "pending"}),
    "user.activated": (
        _activated,
        {"status": "active", "before": {"status": "pending"}, "after": {"status": "active"}},
    ),
    "user.updated": (
        _updated,
        {"first_name": "New", "before": {"first_name": "Old"}, "after": {"first_name": "New"}},
    ),
    "user.roles_changed": (
        _roles_changed,
        {"before": {"roles": ["Member"]}, "after": {"roles": ["Agent"]}},
    ),
    "user.validated": (
        _validated,
        {"validated": True, "before": {"validated": False}, "after": {"validated": True}},
    ),
    "user.invalidated": (
        _invalidated,
        {"validated": False, "before": {"validated": True}, "after": {"validated": False}},
    ),
    "user.disabled": (
        _disabled,
        {
            "status": "disabled",
            "reason": "Left the organization",
            "before": {"status": "active"},
            "after": {"status": "disabled"},
        },
    ),
    "user.enabled": (
        _enabled,
        {"status": "active", "before": {"status": "disabled"}, "after": {"status": "active"}},
    ),
    "user.banned": (_banned, {"status": "banned", "reason": "Spam", "after": {"status": "banned"}}),
    "user.unbanned": (_unbanned, {"status": "active", "before": {"status": "banned"}}),
    "user.trashed": (_trashed, {"status": "trashed", "after": {"status": "trashed"}}),
    "user.restored": (_restored, {"status": "active", "before": {"status": "trashed"}}),
    "user.deleted": (_deleted, {"status": "deleted", "after": {"status": "deleted"}}),
    "user.reactivated": (_reactivated, {"status": "pending", "before": {"status": "deleted"}}),
    "user.email_verified": (
        _email_verified,
        {"email_verified": True, "after": {"email_verified": True}},
    ),
    "user.sessions_revoked": (_sessions_revoked, {"status": "active", "before": {}}),
    "invitation.resent": (_resent, {"status": "pending"}),
    "invitation.revoked": (_revoked, {"status": "pending"}),
    "invitation.accepted": (
        _accepted,
        {
            "status": "active",
            "before": {"status": "pending", "email_verified": False},
            "after": {"status": "active", "email_verified": True},
        },
    ),
    "user.churn_level_changed": (_churn_level_changed, {"before": {"churn": None}}),
}


def test_every_event_type_has_its_real_action_here() -> None:
    assert set(SCENARIOS) == set(catalog.EVENT_TYPES) - {catalog.TEST}


@pytest.mark.parametrize("event_type", list(SCENARIOS))
def test_each_event_type_is_sent_once_by_its_real_action(
    world: World, settings: Settings, event_type: str
) -> None:
    """The action writes one message of the type about the user, whose body is the type,
    the time, and the user as the API shows them with who made the change and what moved."""
    db = world.db
    endpoint = make_endpoint(db, settings, world.org)
    arrange, expected = SCENARIOS[event_type]
    act = arrange(world)
    mark = last_id(db)
    started = utcnow()
    user_id = act()
    written = sent(db, endpoint, after=mark)
    mine = [m for m in written if m.event_type == event_type and m.user_id == user_id]
    assert len(mine) == 1, [(m.event_type, m.user_id) for m in written]
    message = mine[0]
    assert message.status == "pending"
    assert message.uid.startswith("msg_")
    assert message.organization_id == world.org.id
    sent_body = body(message)
    assert set(sent_body) == {"type", "timestamp", "data"}
    assert sent_body["type"] == event_type
    assert sent_body["timestamp"].endswith("Z")
    at = datetime.fromisoformat(sent_body["timestamp"])
    assert started - timedelta(seconds=1) <= at <= utcnow()
    data = sent_body["data"]
    user = db.get_one(User, user_id)
    db.refresh(user)
    assert (data["id"], data["email"], data["status"]) == (str(user.id), user.email, user.status)
    for key, value in expected.items():
        assert data[key] == value, (key, data[key])
    actor = data["actor"]
    if event_type in ("user.email_verified", "invitation.accepted"):
        assert actor == {
            "type": "user",
            "id": str(user.id),
            "name": user.name,
            "impersonator": None,
        }
    elif event_type == "user.churn_level_changed":
        assert actor["type"] == "system"
        assert data["churn"] in ("low", "medium", "high")
        assert data["after"] == {"churn": data["churn"]}
    else:
        assert actor == {
            "type": "user",
            "id": str(world.admin.id),
            "name": world.admin.name,
            "impersonator": None,
        }
    if event_type == "user.banned":
        assert data["until"] == data["banned_until"]
        assert datetime.fromisoformat(data["until"]) > utcnow() + timedelta(days=2)
    if event_type.startswith("invitation."):
        invitation = db.scalars(
            select(Invitation).where(Invitation.user_id == user_id).order_by(Invitation.id.desc())
        ).first()
        assert invitation is not None
        assert data["invitation"]["id"] == str(invitation.id)
    errors = list(
        jsonschema_rs.Draft202012Validator(catalog.event_schema(event_type)).iter_errors(sent_body)
    )
    assert not errors, [str(e) for e in errors]


def test_a_change_through_the_api_is_sent_with_the_api_key_as_actor(
    client: TestClient, db: Session, org: Organization, settings: Settings
) -> None:
    endpoint = make_endpoint(db, settings, org)
    key = factories.make_api_key(db, org)
    user = factories.make_user(db, org)
    response = client.post(
        f"/api/v1/users/{user.id}/disable",
        json={"reason": "Contract ended"},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert response.status_code == 200, response.text
    shown = client.get(
        f"/api/v1/users/{user.id}", headers={"Authorization": f"Bearer {key}"}
    ).json()
    (message,) = sent(db, endpoint)
    data = body(message)["data"]
    assert data["actor"]["type"] == "api_key"
    assert data["reason"] == "Contract ended"
    # the user as GET /api/v1/users/{id} shows them (availability aside: of the moment)
    shown.pop("availability", None)
    assert {k: data[k] for k in shown} == shown


def test_refused_changes_write_no_message(world: World, settings: Settings) -> None:
    endpoint = make_endpoint(world.db, settings, world.org)
    user = world.user()
    with pytest.raises(InvalidInput):
        world.apply(user, Action.DISABLE)  # no reason
    member = world.user()
    with pytest.raises(PermissionDenied):
        lifecycle.apply(
            world.db,
            actor=access.actor_for_user(world.db, member),
            user_id=user.id,
            action=Action.DISABLE,
            given=lifecycle.ActionInput(reason="Because"),
            base_url=BASE,
        )
    assert sent(world.db, endpoint) == []


def test_a_rolled_back_change_writes_no_message(
    database: BoundDatabase, db: Session, org: Organization, settings: Settings
) -> None:
    endpoint = make_endpoint(db, settings, org)
    user = factories.make_user(db, org)
    admin = factories.make_admin(db, org)
    db.commit()  # a savepoint of the test's transaction: the other session sees them
    with database.sessions() as other:
        lifecycle.apply(
            other,
            actor=access.actor_for_user(other, admin),
            user_id=user.id,
            action=Action.DISABLE,
            given=lifecycle.ActionInput(reason="Because"),
            base_url=BASE,
        )
        assert len(sent(other, endpoint)) == 1  # written in the change's transaction
        other.rollback()
    assert sent(db, endpoint) == []


def test_an_endpoint_gets_only_the_types_it_wants(world: World, settings: Settings) -> None:
    both = make_endpoint(world.db, settings, world.org, types=["user.disabled", "user.enabled"])
    every = make_endpoint(world.db, settings, world.org)
    user = world.user()
    world.apply(user, Action.VALIDATE)
    world.apply(user, Action.DISABLE, reason="Because")
    world.apply(user, Action.ENABLE)
    world.apply(user, Action.BAN, reason="Spam", permanent=True)
    assert [m.event_type for m in sent(world.db, both)] == ["user.disabled", "user.enabled"]
    assert [m.event_type for m in sent(world.db, every)] == [
        "user.validated",
        "user.disabled",
        "user.enabled",
        "user.banned",
    ]
    assert body(sent(world.db, every)[-1])["data"]["until"] is None  # banned for good


def test_a_paused_endpoint_gets_nothing(world: World, settings: Settings) -> None:
    paused = make_endpoint(world.db, settings, world.org, enabled=False)
    world.apply(world.user(), Action.DISABLE, reason="Because")
    assert sent(world.db, paused) == []
    assert (
        webhook_events.enqueue(
            world.db,
            organization_id=world.org.id,
            event_type=catalog.TEST,
            user_id=None,
            data={"endpoint_id": str(paused.id), "message": "test"},
            endpoint_ids=[paused.id],
        )
        == 0
    )


def test_an_organizations_events_never_reach_another_organizations_endpoint(
    world: World, settings: Settings
) -> None:
    mine = make_endpoint(world.db, settings, world.org)
    other_org = factories.make_organization(world.db)
    theirs = make_endpoint(world.db, settings, other_org)
    world.apply(world.user(), Action.DISABLE, reason="Because")
    assert [m.event_type for m in sent(world.db, mine)] == ["user.disabled"]
    assert sent(world.db, theirs) == []
    # and enqueue to an endpoint named by id stays within the organization too
    assert (
        webhook_events.enqueue(
            world.db,
            organization_id=world.org.id,
            event_type=catalog.TEST,
            user_id=None,
            data={"endpoint_id": str(theirs.id), "message": "test"},
            endpoint_ids=[theirs.id],
        )
        == 0
    )


def test_the_test_event_goes_to_the_endpoint_named_whatever_its_types(
    world: World, settings: Settings
) -> None:
    named = make_endpoint(world.db, settings, world.org, types=["user.deleted"])
    other = make_endpoint(world.db, settings, world.org)
    data = {"endpoint_id": str(named.id), "message": "This is a test event from Userdesk."}
    written = webhook_events.enqueue(
        world.db,
        organization_id=world.org.id,
        event_type=catalog.TEST,
        user_id=None,
        data=data,
        endpoint_ids=[named.id],
    )
    assert written == 1
    (message,) = sent(world.db, named)
    assert sent(world.db, other) == []
    assert body(message)["data"] == data
    assert message.user_id is None
    schema = jsonschema_rs.Draft202012Validator(catalog.event_schema(catalog.TEST))
    assert schema.is_valid(body(message))


def test_nul_and_huge_reasons_serialize(world: World, settings: Settings) -> None:
    endpoint = make_endpoint(world.db, settings, world.org)
    user = world.user()
    reason = 'before\x00after \u2028 "quoted" é ' + "x" * 200_000
    webhook_events.user_changed(
        world.db,
        actor=world.actor,
        action="user.disabled",
        user_id=user.id,
        changes={"status": {"from": "active", "to": "disabled"}},
        reason=reason,
    )
    (message,) = sent(world.db, endpoint)
    world.db.expire_all()
    assert body(message)["data"]["reason"] == reason
    assert "\x00" not in message.body  # escaped, as JSON has it


def test_a_ban_running_out_is_user_unbanned_by_the_system(world: World, settings: Settings) -> None:
    endpoint = make_endpoint(world.db, settings, world.org)
    user = world.user()
    world.apply(user, Action.BAN, reason="Spam", days=1)
    mark = last_id(world.db)
    assert lifecycle.lift_expired_bans(world.db, now=utcnow() + timedelta(days=2)) == 1
    (message,) = sent(world.db, endpoint, after=mark)
    data = body(message)["data"]
    assert message.event_type == "user.unbanned"
    assert data["actor"] == {"type": "system", "id": None, "name": "system", "impersonator": None}
    assert data["reason"] == "The ban ran out."
    assert (data["status"], data["after"]) == ("active", {"status": "active"})


def test_an_impersonating_admin_is_named_in_the_actor(world: World, settings: Settings) -> None:
    endpoint = make_endpoint(world.db, settings, world.org)
    user = world.user()
    root = factories.make_admin(world.db, world.org, first_name="Root", last_name="")
    acting = Actor(
        world.org.id,
        world.admin.id,
        None,
        world.admin.name,
        world.actor.grants,
        impersonator_id=root.id,
        impersonator_name=root.name,
    )
    lifecycle.apply(
        world.db,
        actor=acting,
        user_id=user.id,
        action=Action.VALIDATE,
        base_url=BASE,
    )
    (message,) = sent(world.db, endpoint)
    assert body(message)["data"]["actor"]["impersonator"] == {"id": str(root.id), "name": "Root"}


def test_a_registration_and_its_confirmation_are_created_activated_and_verified(
    db: Session, org: Organization, settings: Settings
) -> None:
    endpoint = make_endpoint(db, settings, org)
    organizations.update_settings(db, actor=system_actor(org.id), registration="open")
    form = signup.Registration(email="reg@example.com", password="a long and unusual phrase")
    signup.register(db, organization=org, form=form, base_url=BASE)
    token = outbox_link(db, "reg@example.com", "/signup/confirm/").rsplit("/", 1)[1]
    signup.confirm(db, token=token)
    assert [m.event_type for m in sent(db, endpoint)] == [
        "user.created",
        "user.activated",
        "user.email_verified",
    ]


def test_an_import_writes_its_messages_in_a_few_statements(
    world: World, settings: Settings
) -> None:
    """With an endpoint, an import's events are read and written in bulk: the statements
    do not grow with the rows."""
    endpoint = make_endpoint(world.db, settings, world.org, types=["user.invited"])
    db = world.db
    people = [(f"imp{n}@example.com", n) for n in range(1200)]
    ids = [
        factories.make_user(db, world.org, email=email, status="pending").id for email, _ in people
    ]
    targets = [
        (user_id, {"email": email, "email_sent": False, "file": "f.csv", "row": n})
        for user_id, (email, n) in zip(ids, people, strict=True)
    ]
    with statements_sent(db.connection()) as seen:
        audit.record_many(
            db, actor=world.actor, action="user.imported", target_type="user", targets=targets
        )
    assert len(seen) <= 20, len(seen)
    written = sent(db, endpoint)
    assert [m.user_id for m in written] == ids  # in the audit's order
    assert {m.event_type for m in written} == {"user.invited"}
    assert body(written[0])["data"]["email"] == "imp0@example.com"


def test_a_real_import_sends_user_invited_and_invitation_sent(
    world: World, settings: Settings
) -> None:
    endpoint = make_endpoint(world.db, settings, world.org)
    content = b"email,first_name\nann@example.com,Ann\nbob@example.com,Bob\n"
    draft = imports.draft(world.db, actor=world.actor, filename="people.csv", content=content)
    job = imports.start(
        world.db, actor=world.actor, job_id=draft.id, dry_run=False, send_invitations=True
    )
    while not jobs.step(world.db, job=job, base_url=BASE):
        pass
    kinds = [(m.event_type, body(m)["data"]["email"]) for m in sent(world.db, endpoint)]
    assert sorted(kinds) == sorted(
        [
            ("user.invited", "ann@example.com"),
            ("invitation.sent", "ann@example.com"),
            ("user.invited", "bob@example.com"),
            ("invitation.sent", "bob@example.com"),
        ]
    )


def test_without_endpoints_the_hook_reads_once_per_transaction(world: World) -> None:
    """Changes in an organization with no endpoint cost one indexed query per transaction,
    and none at all for actions that tell of no event."""
    db = world.db
    user = world.user()
    db.commit()  # a new transaction
    with statements_sent(db.connection()) as seen:
        world.apply(user, Action.VALIDATE)
        world.apply(user, Action.DISABLE, reason="Because")
        world.apply(user, Action.ENABLE)
    assert sum("webhook_endpoints" in s for s in seen) == 1
    assert not any("webhook_messages" in s for s in seen)
    db.commit()
    with statements_sent(db.connection()) as seen:
        audit.record(db, actor=world.actor, action="segment.created", target_type="segment")
    assert not any("webhook" in s for s in seen)


def test_an_endpoint_added_in_the_transaction_gets_the_next_change(
    world: World, settings: Settings
) -> None:
    user = world.user()
    world.apply(user, Action.VALIDATE)  # read: no endpoint
    endpoint = make_endpoint(world.db, settings, world.org)
    world.apply(user, Action.DISABLE, reason="Because")
    assert [m.event_type for m in sent(world.db, endpoint)] == ["user.disabled"]
    endpoint.enabled = False
    world.db.flush()
    world.apply(user, Action.ENABLE)
    assert [m.event_type for m in sent(world.db, endpoint)] == ["user.disabled"]


def test_each_message_has_its_own_uid_and_one_body_per_event(
    world: World, settings: Settings
) -> None:
    first = make_endpoint(world.db, settings, world.org)
    second = make_endpoint(world.db, settings, world.org)
    world.apply(world.user(), Action.DISABLE, reason="Because")
    (a,), (b,) = sent(world.db, first), sent(world.db, second)
    assert a.uid != b.uid
    assert a.body == b.body


def test_check_event_types_names_the_unknown_one() -> None:
    assert catalog.check_event_types(["user.banned", "user.deleted", "user.banned"]) == [
        "user.banned",
        "user.deleted",
    ]
    with pytest.raises(InvalidInput) as refused:
        catalog.check_event_types(["user.banned", "user.exploded"])
    assert "user.exploded" in refused.value.fields["event_types"]


def test_every_event_schema_is_plain_json_schema_without_refs() -> None:
    for event_type in catalog.EVENT_TYPES:
        schema = catalog.event_schema(event_type)
        assert "$ref" not in orjson.dumps(schema).decode()
        jsonschema_rs.Draft202012Validator(schema)  # a valid schema
        assert schema["properties"]["type"] == {"const": event_type}
    with pytest.raises(InvalidInput):
        catalog.event_schema("user.exploded")
