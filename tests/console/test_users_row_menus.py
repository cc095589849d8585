"""The Users list's row menus: each distinct menu sent once, each row naming its own."""

import re
from datetime import UTC, datetime

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests import factories
from userdesk.access import service as access
from userdesk.organizations.models import Organization
from userdesk.users import lifecycle
from userdesk.users import service as users
from userdesk.users.schemas import user_view
from userdesk.web.console import views


def _menus(page: str) -> dict[str, str]:
    """Each row's menu key by user id, from the list's HTML."""
    found = {}
    for row in page.split("<tr data-user-id=")[1:]:
        user_id = row.split('"', 2)[1]
        key = re.search(r'data-row-menu="([^"]*)"', row.split("</tr>", 1)[0])
        found[user_id] = key.group(1) if key else ""
    return found


def _templates(page: str) -> dict[str, str]:
    return dict(re.findall(r'<template data-row-menu-of="([^"]*)">(.*?)</template>', page, re.S))


def test_each_distinct_menu_is_sent_once_and_names_what_its_rows_offer(
    client: TestClient, db: Session, org: Organization
) -> None:
    admin = factories.make_admin(db, org)
    for status in ("active", "active", "pending", "disabled", "banned", "trashed", "deleted"):
        factories.make_user(db, org, status=status)
    csrf = factories.login(client, admin.email)
    page = client.get("/console/users").text
    menus, templates = _menus(page), _templates(page)
    assert len(menus) == 8
    assert len(templates) == len(set(menus.values()) - {""})  # each once
    assert page.count("<template data-row-menu-of=") == len(templates)
    for key, body in templates.items():
        for action in key.split():
            if action in ("disable", "ban", "delete"):  # asked on the user's page
                assert f'href="/console/users/{{id}}?action={action}"' in body
            else:
                assert f'action="/console/users/{{id}}/actions/{action}"' in body
        assert body.count("<form") == len(set(key.split()) - {"disable", "ban", "delete"})
        if "<form" in body:
            assert f'name="csrf_token" value="{csrf}"' in body
    actor = access.actor_for_user(db, admin)
    for view in users.list_users(db, actor=actor).items:
        offered = lifecycle.available(
            actor,
            user_id=int(view["id"]),
            status=view["status"],
            validated=view["validated"],
            team_id=int(view["team"]["id"]) if view["team"] else None,
        )
        assert menus[view["id"]].split() == [a.value for a in offered]
    assert "disable" not in menus[str(admin.id)].split()  # never on oneself


def test_a_team_administrator_gets_menus_for_their_team_only(
    db: Session, org: Organization
) -> None:
    team = factories.make_team(db, org)
    team_admin = factories.make_user(db, org, roles=("Team Administrator",), team=team)
    mine = factories.make_user(db, org, team=team)
    other = factories.make_user(db, org)
    db.refresh(mine)
    db.refresh(other)
    actor = access.actor_for_user(db, team_admin)
    items = [
        user_view(
            u, team={"id": str(u.team_id), "name": "T"} if u.team_id else None, groups=[], roles=[]
        )
        for u in (mine, other)
    ]
    rows, menus = views.rows(actor, items, {}, datetime.now(UTC))
    assert "disable" in menus.actions[rows[0].menu]
    assert rows[1].menu == ""  # an organization-wide user: nothing the team admin may do


def test_rows_carry_their_labels_worked_out(db: Session, org: Organization) -> None:
    admin = factories.make_admin(db, org)
    unverified = factories.make_user(db, org, status="pending")
    unverified.email_verified_at = None
    db.flush()
    db.refresh(unverified)
    actor = access.actor_for_user(db, admin)
    view = user_view(
        unverified, team=None, groups=[], roles=[{"id": "1", "name": "A"}, {"id": "2", "name": "B"}]
    )
    [row], _ = views.rows(actor, [view], {view["id"]: "online"}, datetime.now(UTC))
    assert row.email_verified == "False"
    assert row.may_resend_verification
    assert row.roles == "A, B"
    assert row.presence == "Online"
    assert 'data-status="pending"' in row.status_badge
    exact = unverified.created_at.strftime("%Y-%m-%d %H:%M UTC")
    assert f'data-relative title="{exact}">just now</time>' in row.created
