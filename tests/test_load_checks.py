"""`make load`'s counts (load/checks.py) on a tiny database: they hold when the database
has what the server answered, and name what was lost, doubled or left in another state."""

from __future__ import annotations

from collections import Counter

from load import checks
from sqlalchemy.orm import Session

from tests import factories
from userdesk.activity.models import ActivityEvent
from userdesk.db.base import utcnow
from userdesk.organizations.models import Organization
from userdesk.webhooks.models import WebhookEndpoint, WebhookMessage

RUN = "t1"


def _arrange(db: Session, org: Organization) -> tuple[checks.Tally, WebhookEndpoint]:
    """A run that created two users, posted three events, disabled a user and enabled
    another back, imported two users; its webhook messages, as the database keeps them."""
    made = [factories.make_user(db, org, email=checks.created_email(RUN, str(n))) for n in range(2)]
    for n in range(2):
        factories.make_user(db, org, email=checks.imported_email(RUN, n), status="pending")
    disabled = factories.make_user(db, org, status="disabled")
    enabled = factories.make_user(db, org)
    for n in range(3):
        db.add(
            ActivityEvent(
                organization_id=org.id,
                user_id=made[0].id,
                type=checks.EVENT_TYPE,
                occurred_at=utcnow(),
                properties={},
                external_id=checks.event_id(RUN, str(n)),
            )
        )
    endpoint = WebhookEndpoint(
        organization_id=org.id, url="http://127.0.0.1:1/hook", secret_sealed="x"
    )
    db.add(endpoint)
    db.flush()
    kinds = [
        ("user.created", made[0].id),
        ("user.created", made[1].id),
        ("user.disabled", disabled.id),
        ("user.disabled", enabled.id),
        ("user.enabled", enabled.id),
    ]
    for n, (kind, user_id) in enumerate(kinds):
        db.add(
            WebhookMessage(
                organization_id=org.id,
                uid=f"msg_{RUN}_{n}",
                endpoint_id=endpoint.id,
                event_type=kind,
                user_id=user_id,
                body="{}",
                status="delivered",
            )
        )
    db.flush()
    tally = checks.Tally(
        run=RUN,
        created=[u.email for u in made],
        events_accepted=3,
        statuses={str(disabled.id): "disabled", str(enabled.id): "active"},
        disables=2,
        enables=1,
        import_job=1,
        import_rows=2,
    )
    return tally, endpoint


def test_the_counts_hold_when_the_database_has_what_the_server_answered(
    db: Session, org: Organization
) -> None:
    tally, endpoint = _arrange(db, org)
    received = Counter({f"msg_{RUN}_{n}": 1 for n in range(5)})
    findings = checks.count(
        db.connection(),
        tally,
        organization_id=org.id,
        endpoint_id=endpoint.id,
        received=received,
        imported=2,
    )
    report, clean = checks.summary(findings)
    assert clean, report
    assert len(findings) == 13


def test_the_counts_name_a_lost_write_a_doubled_delivery_and_a_wrong_state(
    db: Session, org: Organization
) -> None:
    tally, endpoint = _arrange(db, org)
    tally.created.append(checks.created_email(RUN, "lost"))  # answered 201, not stored
    tally.events_accepted = 4  # one accepted event missing
    tally.statuses = dict.fromkeys(tally.statuses, "active")  # the disabled one is not
    received = Counter({f"msg_{RUN}_{n}": 1 for n in range(5)})
    received[f"msg_{RUN}_0"] = 2  # delivered twice
    received["msg_unknown"] = 1
    findings = checks.count(
        db.connection(),
        tally,
        organization_id=org.id,
        endpoint_id=endpoint.id,
        received=received,
        imported=1,
    )
    bad = {f.what: (f.expected, f.found) for f in findings if not f.ok}
    assert bad == {
        "users created by the API": (3, 2),
        "created users the API answered 201 for, in the database once": (3, 2),
        "events stored = events accepted": (4, 3),
        "disabled/enabled users in their last state": (2, 1),
        "users the import job says it created": (2, 1),
        "webhook user.created messages of API-created users": (3, 2),
        "webhook messages received exactly once": (5, 4),
        "webhook messages received that were never sent": (0, 1),
    }
    assert not checks.summary(findings)[1]
