"""The retention actions the churn reasons suggest: which ones, resending a user's
invitation and adding a user to a group, each checked on the server and audited once."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests import factories
from tests.churn.retention_helpers import audited, scored
from tests.mail.test_invitation_flow import bearer, invite, outbox_link
from userdesk.auth.service import LinkProblem
from userdesk.churn.service import (
    ADD_TO_GROUP,
    ASSIGN_OUTREACH,
    RE_ENGAGE,
    RESEND_INVITATION,
    RESEND_VERIFICATION,
    suggested,
)
from userdesk.invitations import service as invitations
from userdesk.organizations.models import Organization
from userdesk.users.models import User


@pytest.mark.parametrize(
    ("reason", "first"),
    [
        ("Never accepted the invitation", RESEND_INVITATION),
        ("Email address not confirmed", RESEND_VERIFICATION),
        ("No sign-in for 24 days", RE_ENGAGE),
        ("No activity for 40 days", RE_ENGAGE),
        ("No activity ever recorded", RE_ENGAGE),
        ("Activity down 70% vs the previous month", ASSIGN_OUTREACH),
        ("Only 2 events in the last 28 days", RE_ENGAGE),
        ("Active in 3 of the last 12 weeks", ADD_TO_GROUP),
    ],
)
def test_each_reason_suggests_the_action_that_answers_it_first(reason: str, first: str) -> None:
    assert suggested([reason], "medium")[0] == first


def test_suggestions_come_once_each_and_follow_the_level_and_status() -> None:
    reasons = ["No sign-in for 24 days", "Active in 3 of the last 12 weeks"]
    assert suggested(reasons, "medium") == [RE_ENGAGE, ASSIGN_OUTREACH, ADD_TO_GROUP]
    assert suggested(["Only 1 event in the last 28 days"], "high") == [
        RE_ENGAGE,
        ADD_TO_GROUP,
        ASSIGN_OUTREACH,
    ]
    assert suggested(reasons, "low") == []
    pending = suggested(["Never accepted the invitation", "No activity ever recorded"], "high")
    assert RE_ENGAGE in pending
    assert RE_ENGAGE not in suggested(
        ["Never accepted the invitation", "No activity ever recorded"], "high", "pending"
    )
    assert suggested(["A reason not worded yet"], "medium") == [RE_ENGAGE]


def test_the_api_shows_the_suggested_actions_of_the_latest_score(
    client: TestClient, db: Session, org: Organization
) -> None:
    user = factories.make_user(db, org, status="pending")
    scored(db, org, user, "high", ["Never accepted the invitation", "No activity ever recorded"])
    key = factories.make_api_key(db, org)
    read = client.get(f"/api/v1/users/{user.id}/churn", headers=bearer(key)).json()
    assert read["actions"] == [RESEND_INVITATION, ADD_TO_GROUP, ASSIGN_OUTREACH]


def test_resending_a_users_invitation_gives_a_new_link_and_kills_the_old_one(
    client: TestClient, db: Session, org: Organization
) -> None:
    key = factories.make_api_key(db, org)
    created = invite(client, key, {"email": "late@example.com"})["created"][0]
    old = outbox_link(db, "late@example.com", "/invite/").rsplit("/", 1)[1]
    response = client.post(
        f"/api/v1/users/{created['user_id']}/invitation/resend", headers=bearer(key)
    )
    assert response.status_code == 200, response.text
    assert response.json()["resend_count"] == 1
    new = outbox_link(db, "late@example.com", "/invite/").rsplit("/", 1)[1]
    assert new != old
    with pytest.raises(LinkProblem):
        invitations.find_by_token(db, token=old)
    assert invitations.find_by_token(db, token=new).id == int(created["id"])
    assert audited(db, "invitation.resent", db.get_one(User, int(created["user_id"]))) == 1


def test_a_user_without_a_pending_invitation_gets_a_clear_error(
    client: TestClient, db: Session, org: Organization
) -> None:
    key = factories.make_api_key(db, org)
    never = factories.make_user(db, org)
    response = client.post(f"/api/v1/users/{never.id}/invitation/resend", headers=bearer(key))
    assert response.status_code == 409
    problem = response.json()
    assert problem["code"] == "invitation.none_pending"
    assert "no pending invitation" in problem["detail"]
    assert "never invited" in problem["detail"]
    created = invite(client, key, {"email": "gone@example.com"})["created"][0]
    client.post(f"/api/v1/invitations/{created['id']}/revoke", headers=bearer(key))
    revoked = client.post(
        f"/api/v1/users/{created['user_id']}/invitation/resend", headers=bearer(key)
    )
    assert revoked.status_code == 409
    assert "was revoked" in revoked.json()["detail"]


def test_resending_an_invitation_takes_users_create_within_the_team(
    client: TestClient, db: Session, org: Organization
) -> None:
    mine, theirs = factories.make_team(db, org), factories.make_team(db, org)
    admin_key = factories.make_api_key(db, org)
    made = {
        team.id: invite(
            client, admin_key, {"email": f"t{team.id}@example.com"}, team_id=str(team.id)
        )["created"][0]["user_id"]
        for team in (mine, theirs)
    }
    agent = factories.make_api_key(db, org, "Agent")
    team_admin = factories.make_api_key(db, org, "Team Administrator", team=mine)
    path = "/api/v1/users/{}/invitation/resend"
    assert client.post(path.format(made[mine.id]), headers=bearer(agent)).status_code == 403
    assert client.post(path.format(made[theirs.id]), headers=bearer(team_admin)).status_code == 404
    assert client.post(path.format(made[mine.id]), headers=bearer(team_admin)).status_code == 200


def test_adding_a_user_to_a_group_is_one_audited_change(
    client: TestClient, db: Session, org: Organization
) -> None:
    key = factories.make_api_key(db, org)
    group = factories.make_group(db, org, "Office hours")
    user = factories.make_user(db, org)
    response = client.post(
        f"/api/v1/users/{user.id}/groups", json={"group_id": str(group.id)}, headers=bearer(key)
    )
    assert response.status_code == 200, response.text
    assert [g["name"] for g in response.json()["groups"]] == ["Office hours"]
    assert response.headers["etag"] == 'W/"2"'
    assert audited(db, "user.added_to_group", user) == 1
    again = client.post(
        f"/api/v1/users/{user.id}/groups", json={"group_id": str(group.id)}, headers=bearer(key)
    )
    assert again.status_code == 409
    assert "already" in again.json()["detail"]
    bad = client.post(
        f"/api/v1/users/{user.id}/groups", json={"group_id": "nope"}, headers=bearer(key)
    )
    assert bad.status_code == 400
    assert bad.json()["errors"] == [{"field": "group_id", "detail": "'nope' is not an id"}]
    missing = client.post(
        f"/api/v1/users/{user.id}/groups", json={"group_id": "999999"}, headers=bearer(key)
    )
    assert missing.status_code == 400
    assert "'999999' is not a group" in missing.text
    assert audited(db, "user.added_to_group", user) == 1


def test_adding_to_a_group_takes_users_update_over_the_user(
    client: TestClient, db: Session, org: Organization
) -> None:
    mine, theirs = factories.make_team(db, org), factories.make_team(db, org)
    group = factories.make_group(db, org)
    inside = factories.make_user(db, org, team=mine)
    outside = factories.make_user(db, org, team=theirs)
    stronger = factories.make_admin(db, org, team=mine)
    body = {"group_id": str(group.id)}
    agent = factories.make_api_key(db, org, "Agent")
    team_admin = factories.make_api_key(db, org, "Team Administrator", team=mine)

    def add(user_id: int, key: str) -> int:
        path = f"/api/v1/users/{user_id}/groups"
        return client.post(path, json=body, headers=bearer(key)).status_code

    assert add(inside.id, agent) == 403
    assert add(outside.id, team_admin) == 404
    assert add(stronger.id, team_admin) == 403  # holds what the team admin lacks
    assert add(inside.id, team_admin) == 200
    assert audited(db, "user.added_to_group", outside) == 0
