from dataclasses import replace

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from tests import factories
from userdesk.access.rules import system_actor
from userdesk.audit import service as audit
from userdesk.audit.models import AuditEvent
from userdesk.organizations.models import Organization


def _three(db: Session, org: Organization) -> list[int]:
    actor = system_actor(org.id)
    return [
        audit.record(db, actor=actor, action=f"test.{n}", changes={"n": n, "b": [1, 2]}).id
        for n in range(3)
    ]


def test_an_untouched_chain_verifies_on_every_database(db: Session, org: Organization) -> None:
    _three(db, org)
    db.expire_all()  # read back from the database, as verify does
    assert audit.verify_chain(db, organization_id=org.id) == []


def test_an_edited_event_is_named(db: Session, org: Organization) -> None:
    ids = _three(db, org)
    db.execute(update(AuditEvent).where(AuditEvent.id == ids[1]).values(action="test.forged"))
    db.expire_all()
    (found,) = audit.verify_chain(db, organization_id=org.id)
    assert found.event_id == ids[1]
    assert "content" in found.problem


def test_a_removed_event_breaks_the_link_of_the_next(db: Session, org: Organization) -> None:
    ids = _three(db, org)
    db.execute(delete(AuditEvent).where(AuditEvent.id == ids[1]))
    db.expire_all()
    (found,) = audit.verify_chain(db, organization_id=org.id)
    assert found.event_id == ids[2]
    assert "before it" in found.problem
    other = factories.make_organization(db)
    _three(db, other)
    assert [b.organization_id for b in audit.verify_chain(db)] == [org.id]
    assert db.scalar(select(AuditEvent.id).where(AuditEvent.organization_id == other.id))


def test_events_recorded_in_a_batch_chain_as_events_recorded_one_by_one(
    db: Session, org: Organization
) -> None:
    """record_many's events (their alike columns passed once a statement) carry the hashes
    verify_chain computes from every event's whole content, in the order of TARGETS."""
    first = audit.record(db, actor=system_actor(org.id), action="test.first").id
    actor = replace(
        system_actor(org.id, 'Zoë "the" importer\\'),
        ip="10.0.0.1",
        user_agent="target_id prev_hash changes",
        impersonator_name="changes",
    )
    targets = [
        (7, {"email": "a@example.com", "row": 2, "groups": ["b", "a"], "z": {"y": 1, "x": None}}),
        (3, {}),
        (9, {"prev_hash": "x", "target_id": "y", "é": "\u2028"}),
    ]
    audit.record_many(db, actor=actor, action="user.imported", target_type="user", targets=targets)
    db.expire_all()
    assert audit.verify_chain(db, organization_id=org.id) == []
    events = db.execute(
        select(AuditEvent.target_id, AuditEvent.changes, AuditEvent.prev_hash, AuditEvent.hash)
        .where(AuditEvent.organization_id == org.id, AuditEvent.id > first)
        .order_by(AuditEvent.id)
    ).all()
    assert [(e.target_id, e.changes) for e in events] == [(str(t), c) for t, c in targets]
    assert [e.prev_hash for e in events[1:]] == [e.hash for e in events[:-1]]
