"""An agent's outreach to a user at risk: assigned to an Agent within reach, emailed to the
agent through the outbox, reassigned, marked done; each step checked and audited once."""

from __future__ import annotations

import dataclasses

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests import factories
from tests.churn.retention_helpers import audited, scored
from tests.conftest import BoundDatabase
from tests.mail.smtp import SmtpServer, link_in, text_of
from tests.mail.test_invitation_flow import bearer
from userdesk.availability.rules import DAYS
from userdesk.config import Settings
from userdesk.mail.models import OutboxMessage
from userdesk.organizations.models import Organization
from userdesk.users.models import User
from userdesk.worker import Worker

ALWAYS = {"time_zone": "UTC", "weekly": {d: [["00:00", "24:00"]] for d in DAYS}}
NEVER = {"time_zone": "UTC", "weekly": {}}
REASONS = ["No sign-in for 41 days", "Activity down 70% vs the previous month"]


def agent(
    db: Session, org: Organization, name: str, hours: dict[str, object], **kw: object
) -> User:
    made = factories.make_user(db, org, first_name=name, roles=("Agent",), **kw)  # type: ignore[arg-type]
    made.business_hours = hours
    db.flush()
    return made


def emails_to(db: Session, address: str) -> list[OutboxMessage]:
    db.expire_all()
    return list(
        db.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.recipient == address)
            .order_by(OutboxMessage.id)
        )
    )


def test_an_outreach_emails_the_agent_the_user_and_why_through_the_outbox(
    client: TestClient,
    db: Session,
    org: Organization,
    database: BoundDatabase,
    settings: Settings,
    smtp: SmtpServer,
) -> None:
    key = factories.make_api_key(db, org)
    ann = agent(db, org, "Ann", ALWAYS)
    quinn = factories.make_user(db, org, first_name="Quinn", last_name="Quiet")
    scored(db, org, quinn, "high", REASONS)
    response = client.post(
        f"/api/v1/users/{quinn.id}/outreach",
        json={"agent_id": str(ann.id), "note": "They liked the old reports."},
        headers=bearer(key),
    )
    assert response.status_code == 201, response.text
    made = response.json()
    assert made["agent"] == {
        "id": str(ann.id),
        "name": ann.name,
        "email": ann.email,
        "presence": "online",
    }
    assert made["reasons"] == REASONS
    assert made["note"] == "They liked the old reports."
    assert made["done_at"] is None
    assert audited(db, "user.outreach_assigned", quinn) == 1
    assert emails_to(db, quinn.email) == []  # the user at risk is not told

    worker = Worker(database, dataclasses.replace(settings, smtp_url=smtp.url))
    assert worker.run_once() == 1
    (message,) = smtp.inbox.to(ann.email)
    assert message["Subject"] == "Please reach out to Quinn Quiet"
    text = text_of(message)
    assert "Hello Ann" in text
    assert quinn.email in text
    assert "No sign-in for 41 days; Activity down 70%" in text
    assert "Note: They liked the old reports." in text
    assert link_in(text, "/console/users/") == f"/console/users/{quinn.id}"


def test_the_agent_chooser_lists_only_agents_within_reach_online_or_away(
    client: TestClient, db: Session, org: Organization
) -> None:
    mine, theirs = factories.make_team(db, org), factories.make_team(db, org)
    ann = agent(db, org, "Ann", ALWAYS, team=mine)
    bob = agent(db, org, "Bob", NEVER, team=mine)
    agent(db, org, "Cleo", ALWAYS, team=theirs)
    agent(db, org, "Dora", ALWAYS, team=mine, status="disabled")
    factories.make_user(db, org, first_name="Eve", team=mine)  # no Agent role
    user = factories.make_user(db, org, team=mine)
    admin = factories.make_api_key(db, org)
    team_admin = factories.make_api_key(db, org, "Team Administrator", team=mine)
    everyone = client.get(f"/api/v1/users/{user.id}/outreach/agents", headers=bearer(admin))
    assert [a["name"].split()[0] for a in everyone.json()] == ["Ann", "Bob", "Cleo"]
    mine_only = client.get(f"/api/v1/users/{user.id}/outreach/agents", headers=bearer(team_admin))
    assert [(a["id"], a["presence"]) for a in mine_only.json()] == [
        (str(ann.id), "online"),
        (str(bob.id), "away"),
    ]


def test_only_an_agent_within_reach_can_be_assigned_and_bad_input_names_the_field(
    client: TestClient, db: Session, org: Organization
) -> None:
    mine, theirs = factories.make_team(db, org), factories.make_team(db, org)
    outsider = agent(db, org, "Cleo", ALWAYS, team=theirs)
    insider = agent(db, org, "Ann", ALWAYS, team=mine)
    member = factories.make_user(db, org, team=mine)
    user = factories.make_user(db, org, team=mine)
    team_admin = factories.make_api_key(db, org, "Team Administrator", team=mine)
    path = f"/api/v1/users/{user.id}/outreach"

    def problems(agent_id: str, note: str = "") -> list[dict[str, str]]:
        body = {"agent_id": agent_id, "note": note}
        response = client.post(path, json=body, headers=bearer(team_admin))
        assert response.status_code == 400, response.text
        return list(response.json()["errors"])

    assert problems("ann") == [{"field": "agent_id", "detail": "'ann' is not an id"}]
    assert f"'{outsider.id}' is not an active user with the Agent role" in str(
        problems(str(outsider.id))
    )
    assert f"'{member.id}'" in problems(str(member.id))[0]["detail"]
    assert problems(str(user.id))[0]["detail"] == f"'{user.id}' is the user themselves"
    assert problems(str(insider.id), "x" * 1001)[0]["field"] == "note"
    assert audited(db, "user.outreach_assigned", user) == 0


def test_assigning_takes_users_update_over_the_user(
    client: TestClient, db: Session, org: Organization
) -> None:
    mine, theirs = factories.make_team(db, org), factories.make_team(db, org)
    ann = agent(db, org, "Ann", ALWAYS)
    outside = factories.make_user(db, org, team=theirs)
    inside = factories.make_user(db, org, team=mine)
    agent_key = factories.make_api_key(db, org, "Agent")
    team_admin = factories.make_api_key(db, org, "Team Administrator", team=mine)
    body = {"agent_id": str(ann.id)}
    refused = client.post(
        f"/api/v1/users/{inside.id}/outreach", json=body, headers=bearer(agent_key)
    )
    assert refused.status_code == 403
    assert "users.update" in refused.json()["detail"]
    hidden = client.post(
        f"/api/v1/users/{outside.id}/outreach", json=body, headers=bearer(team_admin)
    )
    assert hidden.status_code == 404
    assert audited(db, "user.outreach_assigned", inside) == 0
    assert audited(db, "user.outreach_assigned", outside) == 0
    assert emails_to(db, ann.email) == []


def test_an_outreach_is_reassigned_then_marked_done_each_audited_once(
    client: TestClient, db: Session, org: Organization
) -> None:
    key = factories.make_api_key(db, org)
    ann, bob = agent(db, org, "Ann", ALWAYS), agent(db, org, "Bob", NEVER)
    user = factories.make_user(db, org)
    made = client.post(
        f"/api/v1/users/{user.id}/outreach", json={"agent_id": str(ann.id)}, headers=bearer(key)
    ).json()
    second = client.post(
        f"/api/v1/users/{user.id}/outreach", json={"agent_id": str(bob.id)}, headers=bearer(key)
    )
    assert second.status_code == 409
    assert "reassign" in second.json()["detail"]
    base = f"/api/v1/users/{user.id}/outreach/{made['id']}"
    same = client.post(f"{base}/reassign", json={"agent_id": str(ann.id)}, headers=bearer(key))
    assert same.status_code == 400
    moved = client.post(f"{base}/reassign", json={"agent_id": str(bob.id)}, headers=bearer(key))
    assert moved.status_code == 200, moved.text
    assert moved.json()["agent"]["presence"] == "away"
    assert [m.subject for m in emails_to(db, bob.email)] == [f"Please reach out to {user.name}"]
    assert audited(db, "user.outreach_reassigned", user) == 1

    done = client.post(f"{base}/done", headers=bearer(key))
    assert done.status_code == 200
    assert done.json()["done_at"] is not None
    assert client.post(f"{base}/done", headers=bearer(key)).status_code == 409
    assert audited(db, "user.outreach_done", user) == 1
    listed = client.get(f"/api/v1/users/{user.id}/outreach", headers=bearer(key)).json()
    assert [(o["id"], o["agent"]["name"], o["done_by"]) for o in listed] == [
        (made["id"], bob.name, done.json()["done_by"])
    ]
    again = client.post(
        f"/api/v1/users/{user.id}/outreach", json={"agent_id": str(ann.id)}, headers=bearer(key)
    )
    assert again.status_code == 201  # a new one, once the last is done


def test_the_assigned_agent_marks_it_done_but_another_agent_may_not(
    client: TestClient, db: Session, org: Organization
) -> None:
    key = factories.make_api_key(db, org)
    ann, bob = agent(db, org, "Ann", ALWAYS), agent(db, org, "Bob", ALWAYS)
    user = factories.make_user(db, org)
    made = client.post(
        f"/api/v1/users/{user.id}/outreach", json={"agent_id": str(ann.id)}, headers=bearer(key)
    ).json()
    done = f"/console/users/{user.id}/outreach/{made['id']}/done"
    csrf = factories.login(client, bob.email)
    assert client.post(done, data={"csrf_token": csrf}).status_code == 403
    client.cookies.clear()
    csrf = factories.login(client, ann.email)
    page = client.get(f"/console/users/{user.id}").text
    assert 'data-testid="outreach-open"' in page
    assert "Mark done" in page
    assert "Reassign" not in page  # an agent may not update users
    assert client.post(done, data={"csrf_token": csrf}).status_code == 303
    assert audited(db, "user.outreach_done", user) == 1
