"""A browser session is looked up as columns, in one statement, at every request; the
entities behind it are loaded only by a route that asks for them."""

from __future__ import annotations

from sqlalchemy.orm import Session

from tests import factories
from tests.statements import statements_sent
from userdesk.access import service as access
from userdesk.auth import service as auth
from userdesk.auth.models import LoginSession
from userdesk.config import Settings
from userdesk.organizations.models import Organization
from userdesk.users.models import User
from userdesk.web.deps import Auth


def test_a_live_session_is_read_in_one_statement_without_loading_an_entity(
    db: Session, settings: Settings, org: Organization
) -> None:
    person = factories.make_user(db, org, first_name="Ann", last_name="Lee", team=None)
    started = auth.start_session(db, settings=settings, user=person)
    ids = (person.id, started.session.id, started.session.csrf_token, person.email)
    db.flush()
    db.expunge_all()  # nothing left in the identity map to be found there

    with statements_sent(db.connection()) as seen:
        found = auth.authenticate_session(db, settings=settings, token=started.token)

    assert found is not None
    assert len(seen) == 1
    assert not [o for o in db.identity_map.values() if isinstance(o, User | LoginSession)]
    assert (found.user.id, found.id, found.csrf_token, found.user.email) == ids
    assert found.user.name == "Ann Lee"
    assert found.organization.id == org.id


def test_the_entities_are_loaded_when_a_route_asks_for_them(
    db: Session, settings: Settings, org: Organization
) -> None:
    person = factories.make_admin(db, org)
    started = auth.start_session(db, settings=settings, user=person)
    found = auth.authenticate_session(db, settings=settings, token=started.token)
    assert found is not None
    signed_in = Auth(actor=access.actor_for_user(db, found.user), signed_in=found, db=db)

    assert signed_in.user is db.get_one(User, person.id)
    assert signed_in.session is db.get_one(LoginSession, started.session.id)
    assert signed_in.csrf_token == started.session.csrf_token
    assert signed_in.actor.has_console_access
    # An API key's caller has no browser session behind it.
    assert Auth(actor=signed_in.actor).user is None
    assert Auth(actor=signed_in.actor).session is None
