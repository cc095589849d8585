"""Whether a second step is due: the organization's setting, read once per request."""

from __future__ import annotations

from sqlalchemy.orm import Session

from tests import factories
from tests.statements import statements_sent
from userdesk.organizations.models import Organization
from userdesk.two_step import service as two_step


def _requiring(db: Session, org: Organization, required: bool) -> None:
    org.settings = {**org.settings, "two_step_required_for_console": required}
    db.flush()


def test_an_organization_at_hand_is_not_read_again(db: Session, org: Organization) -> None:
    admin = factories.make_admin(db, org)
    _requiring(db, org, True)
    db.expunge(org)  # not in the session: reading it would take a statement
    with statements_sent(db.connection()) as seen:
        assert two_step.is_due(db, admin, has_console_access=True, organization=org)
    assert seen  # whether the admin has a second step is still asked
    assert not [sql for sql in seen if "FROM organizations" in sql]


def test_the_organization_read_or_handed_over_says_the_same(db: Session, org: Organization) -> None:
    admin = factories.make_admin(db, org)
    for required in (True, False):
        _requiring(db, org, required)
        assert two_step.is_due(db, admin, has_console_access=True) is required
        assert two_step.is_due(db, admin, has_console_access=True, organization=org) is required
        assert not two_step.is_due(db, admin, has_console_access=False, organization=org)
