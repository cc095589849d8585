"""The values a row of the Users list shows, worked out once per page or per set of facts."""

from datetime import UTC, datetime, timedelta, tzinfo
from types import SimpleNamespace

import pytest
from sqlalchemy.orm import Session

from tests import factories
from userdesk.access import service as access
from userdesk.organizations.models import Organization
from userdesk.users import lifecycle
from userdesk.users.rules import UserStatus
from userdesk.web import templating
from userdesk.web.console import views
from userdesk.web.templating import Zone, templates, timestamp_text


def _filtered(value: datetime, zone: str | None) -> str:
    """VALUE as the templates' `timestamp` filter writes it (relative words shown), for an
    admin whose time zone is ZONE."""
    auth = SimpleNamespace(signed_in=SimpleNamespace(user=SimpleNamespace(time_zone=zone)))
    return templates.env.from_string("{{ v | timestamp(true) }}").render(v=value, auth=auth)


class _Frozen(datetime):
    """`datetime` whose now() is one moment: the filter's words counted to the test's now
    however long the loop takes (at 7199 s, a second later is another word)."""

    moment = datetime.now(UTC)

    @classmethod
    def now(cls, tz: tzinfo | None = None) -> datetime:  # type: ignore[override]
        return cls.moment.astimezone(tz)


def test_a_rows_last_seen_is_the_timestamp_filters_time_element(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """In UTC and in the admin's zone, at every boundary of the words: the row's <time> is
    the filter's, byte for byte (the words counted to the same moment, now)."""
    now = datetime.now(UTC).replace(microsecond=0)
    monkeypatch.setattr(_Frozen, "moment", now)
    monkeypatch.setattr(templating, "datetime", _Frozen)
    ages = [timedelta(seconds=s) for s in (0, 59, 60, 61, 119, 120, 3599, 3600, 7199, 7200)]
    ages += [timedelta(days=d, seconds=s) for d in (1, 2, 59, 60, 61, 400) for s in (0, 1)]
    ages += [timedelta(seconds=-3630), timedelta(hours=23, minutes=59, seconds=30)]
    assert views._seen(None, now, None) == "Never"
    for name in (None, "Europe/Paris", "Asia/Kolkata", "America/New_York"):
        zone = Zone.of(name)
        for value in (now - age for age in ages):
            written = views._seen(value, now, zone)
            assert written == _filtered(value, name), (name, value)
            assert f'title="{timestamp_text(value, name)}"' in written
            assert (f'data-tz="{name}"' in written) == (name is not None)


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
