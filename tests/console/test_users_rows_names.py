"""The console's Users list names each row's team and roles from the organization's names,
read once per page with its filters' (users.link_names), and the role ids on each user's
row: the same names the API's list reads through the links, never stale."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import delete
from sqlalchemy.orm import Session

from tests import factories
from userdesk.access import service as access
from userdesk.organizations.models import Organization
from userdesk.users import service as users
from userdesk.users.models import UserRole


def test_the_consoles_names_are_the_links_names_for_every_user(
    db: Session, org: Organization
) -> None:
    """Teams, roles (none, one, several, in name order) as the linked page has them;
    groups, which the console's rows do not show, are not read."""
    admin = factories.make_admin(db, org)
    team, other = factories.make_team(db, org, "Zeta"), factories.make_team(db, org, "Alpha")
    group = factories.make_group(db, org)
    factories.make_user(db, org, roles=(), team=team)
    factories.make_user(db, org, roles=("Member",), team=other, groups=(group,))
    factories.make_user(db, org, roles=("Member", "Agent", "Administrator"), team=team)
    factories.make_user(db, org, roles=("Agent",))
    actor = access.actor_for_user(db, admin)

    names = users.link_names(db, actor=actor)
    named = users.list_users(db, actor=actor, names=names).items
    linked = users.list_users(db, actor=actor).items

    assert [(u["id"], u["team"], u["roles"]) for u in named] == [
        (u["id"], u["team"], u["roles"]) for u in linked
    ]
    assert any(len(u["roles"]) == 3 for u in named)
    assert all(u["groups"] == [] for u in named)
    assert any(u["groups"] for u in linked)
    assert list(names.teams.values()) == ["Alpha", "Zeta"]  # the filters' order


def test_a_role_renamed_given_or_taken_shows_at_the_next_page(
    client: TestClient, db: Session, org: Organization
) -> None:
    """Nothing is held between requests: each page reads the names and the role ids."""
    admin = factories.make_admin(db, org)
    person = factories.make_user(db, org, first_name="Pat", roles=("Agent",))
    factories.login(client, admin.email)
    assert ">Agent</td>" in client.get("/console/users").text

    agent = factories.role(db, org, "Agent")
    agent.name = "Support Agent"
    db.flush()
    assert ">Support Agent</td>" in client.get("/console/users").text

    db.execute(delete(UserRole).where(UserRole.user_id == person.id))
    db.add(
        UserRole(
            organization_id=org.id,
            user_id=person.id,
            role_id=factories.role(db, org, "Member").id,
        )
    )
    db.flush()
    row = _row_of(client.get("/console/users").text, person.id)
    assert "Support Agent" not in row
    assert ">Member</td>" in row


def _row_of(page: str, user_id: int) -> str:
    start = page.index(f'<tr data-user-id="{user_id}">')
    return page[start : page.index("</tr>", start)]
