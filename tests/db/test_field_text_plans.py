"""Free text that starts many values of a searchable custom field (issue 22), and that
the text index lists for few users, is planned on SQLite as a custom field's term: past
LISTED_MOST values each row walked in sort order is looked up by a seek, and no list of
every value the text starts is built for the page ("initech status:active" at a million
users built one of 49,000 ids, 37 ms, for a page a walk of 1,300 users finds)."""

from __future__ import annotations

import pytest
from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from tests.db.test_list_plans import page_plans, people  # noqa: F401 - fixture
from userdesk.access.rules import system_actor
from userdesk.organizations.models import Organization
from userdesk.query import builder
from userdesk.users import attributes, fields, service
from userdesk.users.attributes import Party
from userdesk.users.field_schemas import UserFieldCreate
from userdesk.users.models import User

COMPANY = "Qzxcorp"  # in nobody's name or address


@pytest.mark.only_on("sqlite")
@pytest.mark.parametrize("listed_most", [100, 5_000])
def test_rare_text_in_many_values_pages_as_a_custom_field_does(
    db: Session,
    people: Organization,  # noqa: F811
    connection: Connection,
    monkeypatch: pytest.MonkeyPatch,
    listed_most: int,
) -> None:
    """A third of the people work at a company the text starts: with more of them than
    LISTED_MOST the page walks the name index and seeks each row's value; with fewer it
    checks the walk against their list. Either way the page is the brute-force one."""
    monkeypatch.setattr(builder, "FEW", 5)  # as at a million users: no list is short
    monkeypatch.setattr(builder, "LISTED_MOST", listed_most)
    monkeypatch.setattr(builder, "FIELD_TEXT_LISTED_MOST", 5)
    monkeypatch.setattr(service, "READ_IN_ORDER_WITHIN", 600.0)
    actor = system_actor(people.id)
    company = UserFieldCreate(key="company", label="Company", type="text", searchable=True)
    fields.create_field(db, actor=actor, data=company)
    everyone = db.scalars(
        select(User).where(User.organization_id == people.id).order_by(User.id)
    ).all()
    holders = everyone[::3]
    for n, user in enumerate(holders):
        values = {"company": f"{COMPANY} {n}"}
        checked = attributes.checked(
            db, organization_id=people.id, values=values, party=Party.SYSTEM
        )
        attributes.write(db, user, checked)
    db.flush()
    assert len(holders) > 100
    with page_plans(db) as plans:
        page = service.list_users(db, actor=actor, q=COMPANY.lower(), sort="name")
    wanted = sorted(holders, key=lambda u: (u.first_name, u.last_name, u.id))
    assert [int(item["id"]) for item in page.items] == [u.id for u in wanted][
        : service.DEFAULT_PAGE_SIZE
    ]
    assert len(plans) == 1, plans
    assert "ix_users_org_name" in plans[0], plans
    assert "TEMP B-TREE" not in plans[0], plans
    # The values' list (read along the index that leads with the value) only when short.
    listed = "ix_user_field_values_text" in plans[0]
    assert listed == (len(holders) <= listed_most), plans
