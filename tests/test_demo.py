from collections import Counter
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.conftest import BoundDatabase
from userdesk import demo
from userdesk.access import service as access
from userdesk.access.models import Role
from userdesk.activity.models import ActivityEvent
from userdesk.audit import service as audit
from userdesk.audit.models import AuditEvent
from userdesk.churn.models import ChurnRun
from userdesk.dashboard import service as dashboard
from userdesk.db.base import utcnow
from userdesk.invitations import service as invitations
from userdesk.invitations.models import Invitation
from userdesk.mail import mailbox
from userdesk.mail.models import OutboxMessage
from userdesk.organizations.models import Organization
from userdesk.users.models import User, UserRole


def test_demo_people_are_varied_unique_and_consistent_with_their_activity(
    db: Session, org: Organization
) -> None:
    result = demo.populate(db, organization=org, count=600, seed=7)
    assert result.users == 600
    people = db.scalars(select(User).where(User.organization_id == org.id)).all()
    assert len(people) == 600
    assert len({p.email_normalized for p in people}) == 600
    statuses = Counter(p.status for p in people)
    assert set(statuses) == {"active", "pending", "disabled", "banned", "trashed", "deleted"}
    assert statuses["active"] > 300
    assert any(p.team_id for p in people)
    assert any(p.team_id is None for p in people)
    roles = dict(
        db.execute(
            select(Role.name, func.count())
            .join(UserRole, UserRole.role_id == Role.id)
            .where(Role.organization_id == org.id)
            .group_by(Role.name)
        ).all()
    )
    assert sum(roles.values()) == 600
    assert roles["Member"] > 500
    last_event = dict(
        db.execute(
            select(ActivityEvent.user_id, func.max(ActivityEvent.occurred_at))
            .where(ActivityEvent.organization_id == org.id)
            .group_by(ActivityEvent.user_id)
        ).all()
    )
    assert result.events == db.scalar(
        select(func.count())
        .select_from(ActivityEvent)
        .where(ActivityEvent.organization_id == org.id)
    )
    for person in people:
        assert person.last_seen_at == last_event.get(person.id)
        if person.status == "pending":
            assert person.last_login_at is None
        if person.last_login_at is not None:
            assert person.last_seen_at is not None
            assert person.last_login_at <= person.last_seen_at
    newest = max(p.last_seen_at for p in people if p.last_seen_at)
    oldest = min(p.last_seen_at for p in people if p.last_seen_at)
    assert (newest - oldest).days > 60, "months of activity"


def test_the_same_seed_makes_the_same_people(db: Session, org: Organization) -> None:
    from tests import factories

    other = factories.make_organization(db)
    demo.populate(db, organization=org, count=50, seed=3)
    demo.populate(db, organization=other, count=50, seed=3)

    def emails(o: Organization) -> list[str]:
        return sorted(db.scalars(select(User.email).where(User.organization_id == o.id)))

    assert emails(org) == emails(other)


def test_the_demo_organization_comes_with_an_admin_who_can_sign_in(db: Session) -> None:
    from userdesk.auth.secrets import verify_password

    made = demo.create_demo_organization(db, count=20)
    admin = db.scalars(select(User).where(User.email == made.admin_email)).one()
    assert verify_password(admin.password_hash, made.admin_password)
    assert admin.status == "active"


def _demo(database: BoundDatabase, count: int = 300) -> demo.DemoOrganization:
    with database.unit_of_work() as db:
        made = demo.create_demo_organization(db, count=count, seed=5, base_url="http://testserver")
    demo.score(database, organization_id=made.organization.id, base_url="http://testserver")
    return made


def test_not_activated_demo_users_have_invitations_pending_expired_and_resent(
    database: BoundDatabase, db: Session
) -> None:
    made = _demo(database)
    org_id = made.organization.id
    pending = db.scalars(
        select(User).where(User.organization_id == org_id, User.status == "pending")
    ).all()
    invited = {
        i.user_id: i
        for i in db.scalars(select(Invitation).where(Invitation.organization_id == org_id))
    }
    not_signup = [u for u in pending if u.created_via != "signup"]
    assert not_signup
    assert all(u.id in invited for u in not_signup)
    shown = Counter(invitations.shown_status(invited[u.id]) for u in not_signup)
    assert shown["pending"] > 0
    assert shown["expired"] > 0
    assert any(invited[u.id].resend_count > 0 for u in not_signup)
    for invitation in invited.values():
        assert invitation.sent_at is not None
        assert invitation.created_at <= invitation.sent_at <= utcnow()
        # (one sent again by the service today has the two from two readings of the clock)
        ttl = invitation.expires_at - invitation.sent_at
        assert abs(ttl - timedelta(days=7)) < timedelta(seconds=5)
    accepted = [i for i in invited.values() if i.status == "accepted"]
    assert accepted
    for invitation in accepted:
        assert invitation.accepted_at is not None
        assert db.get_one(User, invitation.user_id).status != "pending"


def test_the_demo_audit_log_spans_months_matches_statuses_and_verifies(
    database: BoundDatabase, db: Session
) -> None:
    made = _demo(database)
    org_id = made.organization.id
    events = db.scalars(
        select(AuditEvent).where(AuditEvent.organization_id == org_id).order_by(AuditEvent.id)
    ).all()
    times = [e.occurred_at for e in events]
    assert times == sorted(times), "written in time order"
    assert (times[-1] - times[0]).days > 180, "months of admin work"
    assert audit.verify_chain(db, organization_id=org_id) == []
    by_target: dict[tuple[str, str], list[AuditEvent]] = {}
    for event in events:
        by_target.setdefault((event.target_id or "", event.action), []).append(event)
    now = utcnow()
    changed = db.scalars(
        select(User).where(
            User.organization_id == org_id,
            User.status.in_(("disabled", "banned", "trashed", "deleted")),
        )
    ).all()
    assert {u.status for u in changed} == {"disabled", "banned", "trashed", "deleted"}
    for user in changed:
        (event,) = by_target[(str(user.id), f"user.{user.status}")]
        assert event.changes["status"] == {"from": "active", "to": user.status}
        assert event.occurred_at < now
        assert event.occurred_at == user.status_changed_at
        assert event.reason == user.status_reason
        assert event.reason
        assert user.status_changed_by_id == event.actor_user_id
        assert event.actor_user_id is not None
    invited = [e for e in events if e.action == "user.invited"]
    assert invited
    assert all(e.actor_user_id for e in invited)
    assert any(e.action == "invitation.resent" for e in events)
    assert any(e.action == "user.business_hours_changed" for e in events)
    assert events[-1].action == "churn.scored"


def test_the_demo_has_agents_with_business_hours_and_a_finished_churn_run(
    database: BoundDatabase, db: Session
) -> None:
    made = _demo(database)
    org_id = made.organization.id
    agents = db.scalars(
        select(User)
        .join(UserRole, UserRole.user_id == User.id)
        .join(Role, Role.id == UserRole.role_id)
        .where(User.organization_id == org_id, Role.name == "Agent", User.status == "active")
    ).all()
    assert len(agents) >= 2
    assert all(a.business_hours and a.business_hours["weekly"] for a in agents)
    run = db.scalars(select(ChurnRun).where(ChurnRun.organization_id == org_id)).one()
    assert run.finished_at is not None
    assert run.users > 0
    admin = access.actor_for_user(
        db, db.scalars(select(User).where(User.email == made.admin_email)).one()
    )
    board = dashboard.dashboard(db, actor=admin)
    assert board.runs
    assert board.runs[-1].run_id == run.id
    assert not board.levels_pending
    assert board.at_risk
    assert all(db.get_one(User, u.user_id).status == "active" for u in board.at_risk)
    assert "deleted" in board.statuses.series
    assert board.statuses.days


def test_the_demo_mailbox_holds_the_emails_of_the_admins_latest_work(
    database: BoundDatabase, db: Session
) -> None:
    """Invitations to new agents, a welcome, a verification link and an invitation sent
    again: a handful of emails made by the services (each with its audit event and its
    user), not one per demo user."""
    made = _demo(database)
    org_id = made.organization.id
    admin = access.actor_for_user(
        db, db.scalars(select(User).where(User.email == made.admin_email)).one()
    )
    entries = mailbox.entries(db, actor=admin)
    kinds = Counter(e.kind for e in entries)
    assert kinds["Invitation"] >= len(demo.NEW_AGENTS)
    assert kinds["Welcome"] == 1
    assert kinds["Verification"] == 1
    assert len(entries) <= 8
    people = {u.email: u for u in db.scalars(select(User).where(User.organization_id == org_id))}
    for entry in entries:
        assert entry.recipient in people
        assert entry.state == "queued"
    for first, last, _ in demo.NEW_AGENTS:
        agent = people[f"{first}.{last}@demo.example".lower()]
        roles = db.scalars(
            select(Role.name)
            .join(UserRole, UserRole.role_id == Role.id)
            .where(UserRole.user_id == agent.id)
        ).all()
        assert (agent.status, roles) == ("pending", ["Agent"])
    welcomed = people[demo.WELCOMED[2]]
    assert welcomed.status == "active"
    # The links are the server's, their tokens never shown.
    outbox = db.scalars(select(OutboxMessage).where(OutboxMessage.organization_id == org_id)).all()
    assert all("http://testserver/" in m.payload["text"] for m in outbox)
    assert all(e.link_hidden for e in entries if e.kind in ("Welcome", "Verification"))
    actions = Counter(
        db.scalars(
            select(AuditEvent.action).where(
                AuditEvent.organization_id == org_id, AuditEvent.actor_user_id.is_not(None)
            )
        )
    )
    assert actions["user.verification_email_sent"] == 1
    assert actions["user.invited"] >= len(demo.NEW_AGENTS)


def test_the_demos_churn_risk_is_spread_over_the_levels_and_the_most_at_risk_differ(
    database: BoundDatabase, db: Session
) -> None:
    """Each person visits at a rhythm of their own, some drift away: most active users are
    low, some medium, a few high, and the dashboard's most at risk are not ten people tied
    at one probability (as when most people's last visit was past the score's cap)."""
    made = _demo(database)
    org_id = made.organization.id
    levels = Counter(
        db.scalars(
            select(User.churn_level).where(User.organization_id == org_id, User.status == "active")
        )
    )
    active = sum(levels.values())
    assert set(levels) == {"low", "medium", "high"}
    assert levels["low"] > active / 2
    assert 0 < levels["high"] < active / 4
    admin = access.actor_for_user(
        db, db.scalars(select(User).where(User.email == made.admin_email)).one()
    )
    at_risk = dashboard.dashboard(db, actor=admin).at_risk
    assert len(at_risk) == 10
    shown = [round(u.probability * 100) for u in at_risk]  # as the dashboard writes them
    assert len(set(shown)) >= 4, shown
    assert shown == sorted(shown, reverse=True)
    assert all(u.reasons for u in at_risk)
