"""A common family name's prefix (`name.familyName sw "Mar"`, thousands of users of a
million) is paged and counted from the index alone on SQLite: migration 0034 put the
status in it (SCIM sees users not deleted), and the page reads its ids before its rows.
With a row read per match, the page and its count took 48 to 51 ms at 1 M users."""

from __future__ import annotations

import pytest
from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from tests.scim.test_filter_plans import plan, user_reads
from userdesk import demo
from userdesk.access.rules import system_actor
from userdesk.organizations.models import Organization
from userdesk.scim import users as scim_users
from userdesk.users.models import User

INDEX = "ix_users_search_last_name_lower"


@pytest.fixture
def people(db: Session, org: Organization) -> Organization:
    demo.populate(db, organization=org, count=2_000, seed=5)
    return org


def test_a_common_prefix_s_page_and_count_read_the_index_alone(
    db: Session, people: Organization, connection: Connection
) -> None:
    users = db.scalars(select(User).where(User.organization_id == people.id)).all()
    prefixes: dict[str, int] = {}
    for user in users:
        if len(user.last_name) >= 3:
            prefix = user.last_name[:3].lower()
            prefixes[prefix] = prefixes.get(prefix, 0) + 1
    common = max(prefixes, key=lambda p: prefixes[p])
    wanted = sorted(
        u.id for u in users if u.last_name.lower().startswith(common) and u.status != "deleted"
    )
    assert len(wanted) > 10
    expression = f'name.familyName sw "{common}"'
    with user_reads(db) as seen:
        page = scim_users.search(
            db, actor=system_actor(people.id, "Okta"), filter_=expression, count=10
        )
    assert [u.id for u in page.users] == wanted[:10]
    assert page.total == len(wanted)
    filtering = [(s, p) for s, p in seen if "users.status !=" in s]
    assert len(filtering) == 2  # the page's ids, then totalResults
    for statement, parameters in filtering:
        assert statement.lstrip().startswith(("SELECT users.id", "SELECT count(*)")), statement
        found = plan(db.connection(), statement, parameters)
        assert INDEX in found, found
        if db.get_bind().dialect.name == "sqlite":
            assert f"COVERING INDEX {INDEX}" in found, found
