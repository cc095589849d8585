"""The values a row of the Users list shows, worked out once per page or per set of facts."""

from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from tests import factories
from userdesk.access import service as access
from userdesk.organizations.models import Organization
from userdesk.users import lifecycle
from userdesk.users.rules import UserStatus
from userdesk.web.console import views
from userdesk.web.templating import ago, timestamp_text


def test_a_rows_last_seen_reads_as_ago_and_timestamp_write_it() -> None:
    now = datetime(2026, 3, 1, 12, 0, 30, tzinfo=UTC)
    ages = [timedelta(seconds=s) for s in (0, 59, 60, 61, 119, 120, 3599, 3600, 7199, 7200)]
    ages += [timedelta(days=d, seconds=s) for d in (1, 2, 59, 60, 61, 400) for s in (0, 1)]
    ages += [timedelta(seconds=-5), timedelta(hours=23, minutes=59, seconds=59)]
    for value in [None, *(now - age for age in ages)]:
        assert views._seen(value, now) == (ago(value, now), timestamp_text(value))


def test_a_rows_menu_is_what_lifecycle_offers_that_actor_over_that_user(
    db: Session, org: Organization
) -> None:
    """The menus are worked out once per set of grants and facts; each is what
    `lifecycle.available` offers the actor over the user themselves."""
    team, other = factories.make_team(db, org), factories.make_team(db, org)
    admin = factories.make_admin(db, org)
    team_admin = factories.make_user(db, org, roles=("Team Administrator",), team=team)
    for person in (admin, team_admin):
        actor = access.actor_for_user(db, person)
        for status in UserStatus:
            for validated in (True, False):
                for team_id in (None, team.id, other.id):
                    for user_id in (person.id, person.id + 1000):
                        expected = lifecycle.available(
                            actor,
                            user_id=user_id,
                            status=status.value,
                            validated=validated,
                            team_id=team_id,
                        )
                        facts = (
                            status.value,
                            validated,
                            team_id if views._by_team(actor.grants) else None,
                            user_id == person.id,
                        )
                        got = views._offered(actor.grants, *facts)
                        assert got == tuple(a.value for a in expected)
    assert views._by_team(access.actor_for_user(db, team_admin).grants)
    assert not views._by_team(access.actor_for_user(db, admin).grants)
