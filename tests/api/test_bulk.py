"""Bulk actions: a preview, then a job the worker runs, each user on their own."""

from __future__ import annotations

import dataclasses

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests import factories
from tests.conftest import BoundDatabase
from userdesk.config import Settings
from userdesk.invitations.models import Invitation
from userdesk.organizations.models import Organization
from userdesk.users import bulk
from userdesk.users.models import User
from userdesk.worker import Worker


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def drain(database: BoundDatabase, settings: Settings) -> None:
    worker = Worker(database, dataclasses.replace(settings, smtp_url=None))
    while worker.run_jobs():
        pass


def test_a_query_is_previewed_then_disabled_in_a_job_with_progress(
    client: TestClient,
    db: Session,
    org: Organization,
    database: BoundDatabase,
    settings: Settings,
    monkeypatch,
) -> None:
    monkeypatch.setattr(bulk, "CHUNK", 3)  # several chunks
    key = factories.make_api_key(db, org)
    team = factories.make_team(db, org, "Sales")
    sales = [factories.make_user(db, org, team=team) for _ in range(7)]
    other = factories.make_user(db, org)
    already = factories.make_user(db, org, team=team, status="disabled")
    body = {"action": "disable", "q": 'team:"Sales"', "reason": "Team closed"}
    preview = client.post("/api/v1/users/bulk/preview", json=body, headers=bearer(key)).json()
    assert preview["total"] == 8
    assert len(preview["sample"]) == 8
    started = client.post("/api/v1/users/bulk", json=body, headers=bearer(key))
    assert started.status_code == 202
    job = started.json()
    assert job["status"] == "queued"
    assert job["total"] == 8
    drain(database, settings)
    done = client.get(f"/api/v1/jobs/{job['id']}", headers=bearer(key)).json()
    assert done["status"] == "done"
    assert done["done"] == 7
    assert done["failed"] == 1
    assert done["problems"][0]["email"] == already.email
    assert "Disabled" in done["problems"][0]["problem"]
    db.expire_all()
    assert {db.get(User, u.id).status for u in sales} == {"disabled"}  # type: ignore[union-attr]
    assert db.get(User, other.id).status == "active"  # type: ignore[union-attr]


def test_a_bulk_action_checks_its_inputs_before_starting(
    client: TestClient, db: Session, org: Organization
) -> None:
    key = factories.make_api_key(db, org)
    missing = client.post(
        "/api/v1/users/bulk", json={"action": "ban", "q": "status:active"}, headers=bearer(key)
    )
    assert missing.status_code == 400
    fields = {e["field"] for e in missing.json()["errors"]}
    assert fields == {"reason", "days"}
    unknown = client.post(
        "/api/v1/users/bulk", json={"action": "explode", "ids": ["1"]}, headers=bearer(key)
    )
    assert unknown.status_code == 400
    both = client.post(
        "/api/v1/users/bulk", json={"action": "trash", "q": "", "ids": ["1"]}, headers=bearer(key)
    )
    assert both.status_code == 400
    agent = factories.make_api_key(db, org, "Agent")
    assert (
        client.post(
            "/api/v1/users/bulk/preview", json={"action": "trash", "q": ""}, headers=bearer(agent)
        ).status_code
        == 403
    )


def test_selected_pending_users_get_their_invitations_resent(
    client: TestClient, db: Session, org: Organization, database: BoundDatabase, settings: Settings
) -> None:
    key = factories.make_api_key(db, org)
    made = client.post(
        "/api/v1/invitations",
        json={"people": [{"email": "a1@example.com"}, {"email": "a2@example.com"}]},
        headers=bearer(key),
    ).json()["created"]
    plain = factories.make_user(db, org)
    ids = [m["user_id"] for m in made] + [str(plain.id)]
    job = client.post(
        "/api/v1/users/bulk", json={"action": "resend-invitation", "ids": ids}, headers=bearer(key)
    ).json()
    drain(database, settings)
    done = client.get(f"/api/v1/jobs/{job['id']}", headers=bearer(key)).json()
    assert (done["done"], done["failed"]) == (2, 1)
    assert done["problems"][0]["problem"] == "has no pending invitation"
    counts = db.scalars(
        select(Invitation.resend_count).where(Invitation.email.like("a%@example.com"))
    ).all()
    assert sorted(counts) == [1, 1]


def test_a_job_stops_when_its_starter_loses_access(
    client: TestClient, db: Session, org: Organization, database: BoundDatabase, settings: Settings
) -> None:
    admin = factories.make_admin(db, org)
    factories.make_admin(db, org)  # not the last administrator
    target = factories.make_user(db, org)
    csrf = factories.login(client, admin.email)
    job = client.post(
        "/api/v1/users/bulk",
        json={"action": "trash", "ids": [str(target.id)]},
        headers={"X-CSRF-Token": csrf},
    ).json()
    admin.status = "disabled"
    db.flush()
    drain(database, settings)
    db.expire_all()
    assert db.get(User, target.id).status == "active"  # type: ignore[union-attr]
    from userdesk.jobs.models import Job

    stored = db.get(Job, int(job["id"]))
    assert stored is not None
    assert stored.status == "failed"


def test_an_empty_selection_is_refused_not_taken_as_everyone(
    client: TestClient, db: Session, org: Organization
) -> None:
    key = factories.make_api_key(db, org)
    bystander = factories.make_user(db, org)
    for path in ("/api/v1/users/bulk/preview", "/api/v1/users/bulk"):
        refused = client.post(
            path, json={"action": "disable", "ids": [], "reason": "x"}, headers=bearer(key)
        )
        assert refused.status_code == 400
        assert refused.json()["code"] == "bulk.empty_selection"
        assert [e["field"] for e in refused.json()["errors"]] == ["ids"]
    db.expire_all()
    assert db.get(User, bystander.id).status == "active"  # type: ignore[union-attr]


def test_the_acting_admin_is_never_a_target_of_their_own_bulk_action(
    client: TestClient, db: Session, org: Organization, database: BoundDatabase, settings: Settings
) -> None:
    admin = factories.make_admin(db, org)
    factories.make_admin(db, org)  # not the last administrator
    team = factories.make_team(db, org, "Ops")
    admin.team_id = team.id
    mates = [factories.make_user(db, org, team=team) for _ in range(2)]
    db.flush()
    csrf = factories.login(client, admin.email)
    body = {"action": "disable", "q": 'team:"Ops"', "reason": "Reorganised"}
    preview = client.post(
        "/api/v1/users/bulk/preview", json=body, headers={"X-CSRF-Token": csrf}
    ).json()
    assert preview["total"] == 2
    assert admin.email not in {u["email"] for u in preview["sample"]}
    assert [(u["email"], u["why"]) for u in preview["left_out"]] == [
        (admin.email, bulk.LEFT_OUT_SELF)
    ]
    job = client.post("/api/v1/users/bulk", json=body, headers={"X-CSRF-Token": csrf}).json()
    assert job["total"] == 2
    drain(database, settings)
    done = client.get(f"/api/v1/jobs/{job['id']}", headers={"X-CSRF-Token": csrf}).json()
    assert (done["done"], done["failed"]) == (2, 0)
    db.expire_all()
    assert db.get(User, admin.id).status == "active"  # type: ignore[union-attr]
    assert {db.get(User, u.id).status for u in mates} == {"disabled"}  # type: ignore[union-attr]


def test_an_admin_signs_everyone_a_query_finds_out_at_once(
    client: TestClient, db: Session, org: Organization, database: BoundDatabase, settings: Settings
) -> None:
    key = factories.make_api_key(db, org)
    people = [factories.make_user(db, org) for _ in range(3)]
    browsers = []
    for person in people:
        browser = TestClient(client.app, base_url="http://testserver", follow_redirects=False)
        factories.login(browser, person.email)
        browsers.append(browser)
    job = client.post(
        "/api/v1/users/bulk",
        json={"action": "revoke-sessions", "q": "role:Member"},
        headers=bearer(key),
    ).json()
    assert job["total"] == 3
    drain(database, settings)
    assert [b.get("/me").status_code for b in browsers] == [303, 303, 303]
