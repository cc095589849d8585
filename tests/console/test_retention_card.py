"""The churn card on a user's page: each suggested retention action is a one-click form,
offered only to who may take it, refused on the server otherwise, and audited once."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests import factories
from tests.churn.retention_helpers import audited, scored
from tests.mail.test_invitation_flow import bearer, invite
from userdesk.organizations.models import Organization
from userdesk.users.models import User

REASONS = [
    "Never accepted the invitation",
    "No sign-in for 41 days",
    "Active in 2 of the last 12 weeks",
]


def card(page: str) -> str:
    return page.split('data-testid="churn"', 1)[1].split('data-testid="timeline"', 1)[0]


def test_each_suggested_action_is_a_button_with_its_form(
    client: TestClient, db: Session, org: Organization
) -> None:
    admin = factories.make_admin(db, org)
    ann = factories.make_user(db, org, first_name="Ann", roles=("Agent",))
    ann.business_hours = {"time_zone": "UTC", "weekly": {}}
    group = factories.make_group(db, org, "Office hours")
    user = factories.make_user(db, org)
    scored(db, org, user, "high", REASONS)
    factories.login(client, admin.email)
    page = client.get(f"/console/users/{user.id}").text
    assert page.count("<div") == page.count("</div>")  # the cards close where they should
    shown = card(page)
    for action in ("resend_invitation", "send_re_engagement", "assign_outreach", "add_to_group"):
        assert f'data-testid="action-{action}"' in shown, action
    assert 'data-testid="action-resend_verification"' not in shown  # not suggested
    assert f'<option value="{ann.id}">{ann.name} · Away</option>' in shown
    assert f'<option value="{group.id}">Office hours</option>' in shown


def test_the_card_offers_nothing_the_viewer_may_not_do(
    client: TestClient, db: Session, org: Organization
) -> None:
    viewer = factories.make_user(db, org, roles=("Agent",))
    factories.make_group(db, org)
    user = factories.make_user(db, org)
    scored(db, org, user, "high", REASONS)
    factories.login(client, viewer.email)
    shown = card(client.get(f"/console/users/{user.id}").text)
    assert 'data-testid="churn-reasons"' in shown
    assert 'data-testid="retention-actions"' not in shown


def test_one_click_resends_the_invitation_or_says_there_is_none(
    client: TestClient, db: Session, org: Organization
) -> None:
    admin = factories.make_admin(db, org)
    key = factories.make_api_key(db, org)
    invited = invite(client, key, {"email": "late@example.com"})["created"][0]
    pending = db.get_one(User, int(invited["user_id"]))
    never = factories.make_user(db, org)
    for user in (pending, never):
        scored(db, org, user, "high", REASONS)
    csrf = factories.login(client, admin.email)
    sent = client.post(f"/console/users/{pending.id}/invitation/resend", data={"csrf_token": csrf})
    assert sent.status_code == 303
    assert sent.headers["location"].endswith("?done=resend_invitation")
    toast = f"Sent a new invitation to {pending.email}."
    assert toast in client.get(sent.headers["location"]).text
    assert audited(db, "invitation.resent", pending) == 1
    refused = client.post(f"/console/users/{never.id}/invitation/resend", data={"csrf_token": csrf})
    assert refused.status_code == 409
    assert re.search(r'data-testid="problem">[^<]*has no pending invitation', refused.text)
    assert audited(db, "invitation.resent", never) == 0
    client.cookies.clear()
    agent = factories.make_user(db, org, roles=("Agent",))
    csrf = factories.login(client, agent.email)
    denied = client.post(
        f"/console/users/{pending.id}/invitation/resend", data={"csrf_token": csrf}
    )
    assert denied.status_code == 403
    assert audited(db, "invitation.resent", pending) == 1


def test_one_click_adds_to_a_group_within_the_team_admins_reach(
    client: TestClient, db: Session, org: Organization
) -> None:
    mine, theirs = factories.make_team(db, org), factories.make_team(db, org)
    team_admin = factories.make_user(db, org, roles=("Team Administrator",), team=mine)
    group = factories.make_group(db, org, "Office hours")
    inside = factories.make_user(db, org, team=mine)
    outside = factories.make_user(db, org, team=theirs)
    csrf = factories.login(client, team_admin.email)
    form = {"group_id": str(group.id), "csrf_token": csrf}
    added = client.post(f"/console/users/{inside.id}/groups", data=form)
    assert added.status_code == 303
    assert audited(db, "user.added_to_group", inside) == 1
    twice = client.post(f"/console/users/{inside.id}/groups", data=form)
    assert twice.status_code == 409
    assert "is in Office hours already" in twice.text
    bad = client.post(f"/console/users/{inside.id}/groups", data={**form, "group_id": "x"})
    assert bad.status_code == 400
    assert "&#39;x&#39; is not an id" in bad.text
    assert client.post(f"/console/users/{outside.id}/groups", data=form).status_code == 404
    assert audited(db, "user.added_to_group", inside) == 1
    assert audited(db, "user.added_to_group", outside) == 0


def test_one_click_assigns_an_agent_then_the_page_shows_reassign_and_done(
    client: TestClient, db: Session, org: Organization
) -> None:
    admin = factories.make_admin(db, org)
    ann = factories.make_user(db, org, first_name="Ann", roles=("Agent",))
    bob = factories.make_user(db, org, first_name="Bob", roles=("Agent",))
    user = factories.make_user(db, org)
    scored(db, org, user, "high", REASONS)
    csrf = factories.login(client, admin.email)
    assigned = client.post(
        f"/console/users/{user.id}/outreach",
        data={"agent_id": str(ann.id), "note": "Call before Friday", "csrf_token": csrf},
    )
    assert assigned.status_code == 303
    assert audited(db, "user.outreach_assigned", user) == 1
    page = client.get(f"/console/users/{user.id}").text
    outreach = page.split('data-testid="outreach"', 1)[1]
    assert ann.name in outreach
    assert "Call before Friday" in outreach
    assert "Never accepted the invitation" in outreach  # the reasons at the time
    assert f"{ann.name} is to reach out" in card(page)
    assert f'<option value="{bob.id}">' in outreach.split('data-testid="outreach-reassign"', 1)[1]
    row = re.search(r"/outreach/(\d+)/reassign", outreach)
    assert row
    moved = client.post(
        f"/console/users/{user.id}/outreach/{row.group(1)}/reassign",
        data={"agent_id": str(bob.id), "csrf_token": csrf},
    )
    assert moved.status_code == 303
    done = client.post(
        f"/console/users/{user.id}/outreach/{row.group(1)}/done", data={"csrf_token": csrf}
    )
    assert done.status_code == 303
    assert 'data-testid="outreach-done"' in client.get(f"/console/users/{user.id}").text
    assert audited(db, "user.outreach_reassigned", user) == 1
    assert audited(db, "user.outreach_done", user) == 1
    refused = client.post(
        f"/console/users/{user.id}/outreach",
        data={"agent_id": str(user.id), "csrf_token": csrf},
    )
    assert refused.status_code == 400
    assert "is the user themselves" in refused.text


def test_agents_and_users_of_other_teams_are_out_of_a_team_admins_reach(
    client: TestClient, db: Session, org: Organization
) -> None:
    mine, theirs = factories.make_team(db, org), factories.make_team(db, org)
    team_admin = factories.make_user(db, org, roles=("Team Administrator",), team=mine)
    near = factories.make_user(db, org, roles=("Agent",), team=mine)
    far = factories.make_user(db, org, roles=("Agent",), team=theirs)
    inside = factories.make_user(db, org, team=mine)
    outside = factories.make_user(db, org, team=theirs)
    scored(db, org, inside, "high", REASONS)
    csrf = factories.login(client, team_admin.email)
    shown = card(client.get(f"/console/users/{inside.id}").text)
    assert f'value="{near.id}"' in shown
    assert f'value="{far.id}"' not in shown
    far_agent = client.post(
        f"/console/users/{inside.id}/outreach", data={"agent_id": str(far.id), "csrf_token": csrf}
    )
    assert far_agent.status_code == 400
    far_user = client.post(
        f"/console/users/{outside.id}/outreach", data={"agent_id": str(near.id), "csrf_token": csrf}
    )
    assert far_user.status_code == 404
    assert audited(db, "user.outreach_assigned", inside) == 0
    assert audited(db, "user.outreach_assigned", outside) == 0
    key = factories.make_api_key(db, org, "Team Administrator", team=mine)
    api = client.post(
        f"/api/v1/users/{inside.id}/outreach",
        json={"agent_id": str(near.id)},
        headers=bearer(key),
    )
    assert api.status_code == 201
