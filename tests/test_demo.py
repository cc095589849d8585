from collections import Counter

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from userdesk import demo
from userdesk.access.models import Role
from userdesk.activity.models import ActivityEvent
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
