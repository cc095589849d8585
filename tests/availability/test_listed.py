"""Online or Away for the agents a list shows, read in one statement of columns."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.orm import Session

from tests import factories
from tests.api.test_availability import ALWAYS, NEVER
from tests.statements import statements_sent
from userdesk.access import service as access
from userdesk.availability import service as availability
from userdesk.organizations.models import Organization
from userdesk.users import service as users


def test_listed_agents_show_their_own_hours_else_the_organizations_in_one_statement(
    db: Session, org: Organization
) -> None:
    admin = factories.make_admin(db, org)
    org.settings = {**org.settings, "business_hours": ALWAYS}
    by_org = factories.make_user(db, org, roles=("Agent",))
    closed = factories.make_user(db, org, roles=("Agent",))
    closed.business_hours = NEVER
    disabled = factories.make_user(db, org, roles=("Agent",), status="disabled")
    member = factories.make_user(db, org)
    db.flush()
    items = users.list_users(db, actor=access.actor_for_user(db, admin)).items
    with statements_sent(db.connection()) as seen:
        presence = availability.of_listed(db, org.id, items)
    assert presence == {str(by_org.id): "online", str(closed.id): "away", str(disabled.id): "away"}
    assert str(member.id) not in presence
    assert len(seen) == 1
    # The same answer as a user's own page gives.
    now = datetime.now(UTC)
    for user in (by_org, closed, disabled):
        assert availability.user_availability(db, user, now) == presence[str(user.id)]


def test_a_list_without_agents_asks_nothing(db: Session, org: Organization) -> None:
    admin = factories.make_admin(db, org)
    factories.make_user(db, org)
    items = users.list_users(db, actor=access.actor_for_user(db, admin)).items
    items = [i for i in items if all(r["name"] != "Agent" for r in i["roles"])]
    assert availability.of_listed(db, org.id, items) == {}
