"""Importing a messy CSV: a dry run tells each row's fate, a real run creates the good
rows as Not Activated users, and the same file twice creates nobody twice."""

from __future__ import annotations

import dataclasses

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests import factories
from tests.conftest import BoundDatabase
from userdesk.access.rules import system_actor
from userdesk.audit import service as audit
from userdesk.audit.models import AuditEvent
from userdesk.config import Settings
from userdesk.imports import service as imports
from userdesk.imports.models import ImportFile
from userdesk.invitations import service as invitations
from userdesk.invitations.models import Invitation
from userdesk.jobs import service as jobs
from userdesk.jobs.models import Job
from userdesk.mail.models import OutboxMessage
from userdesk.organizations.models import Organization
from userdesk.users.models import User
from userdesk.worker import Worker

MESSY = (
    "E-mail,First Name,Last Name,Team,Groups\r\n"
    "ann@example.com,Ann,Lee,Sales,VIP;Beta\r\n"
    "not-an-email,Bob,,,\r\n"
    "old@example.com,Old,Timer,,\r\n"
    ",,,,\r\n"
    "cy@example.com,Cy,Dee,Nowhere,\r\n"
    "ANN@example.com,Ann,Again,,\r\n"
    'di@example.com,Di,"O\'Neil, Jr",,Beta\r\n'
)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def make_what_messy_names(db: Session, org: Organization) -> None:
    """The team and groups MESSY's good rows name."""
    factories.make_team(db, org, "Sales")
    factories.make_group(db, org, "VIP")
    factories.make_group(db, org, "Beta")


def run_jobs(database: BoundDatabase, settings: Settings) -> None:
    worker = Worker(database, dataclasses.replace(settings, smtp_url=None))
    while worker.run_jobs():
        pass


def start(client: TestClient, key: str, **form: str) -> dict:
    response = client.post(
        "/api/v1/imports",
        files={"file": ("people.csv", MESSY.encode(), "text/csv")},
        data=form,
        headers=bearer(key),
    )
    assert response.status_code == 202, response.text
    return response.json()


def test_a_dry_run_reports_every_rows_fate_and_writes_nothing(
    client: TestClient, db: Session, org: Organization, database: BoundDatabase, settings: Settings
) -> None:
    make_what_messy_names(db, org)
    factories.make_user(db, org, email="old@example.com")
    key = factories.make_api_key(db, org)
    job = start(client, key)
    assert job["status"] == "queued"
    assert job["params"]["mapping"]["email"] == "E-mail"
    run_jobs(database, settings)
    done = client.get(f"/api/v1/jobs/{job['id']}", headers=bearer(key)).json()
    assert done["status"] == "done"
    fates = {row["row"]: (row["fate"], row.get("detail", "")) for row in done["result"]}
    assert fates[2] == ("would be created", "")
    assert fates[3][0] == "invalid"
    assert "not-an-email" in fates[3][1]
    assert fates[4][0] == "exists"
    assert 5 not in fates  # an empty line is no row
    assert fates[6] == ("invalid", "unknown team 'Nowhere'")
    assert fates[7][0] == "invalid"
    assert "row 2" in fates[7][1]
    assert fates[8] == ("would be created", "")
    assert (
        db.scalar(select(func.count()).select_from(User).where(User.organization_id == org.id)) == 1
    )


def test_a_real_run_creates_the_good_rows_and_a_second_run_creates_nobody(
    client: TestClient, db: Session, org: Organization, database: BoundDatabase, settings: Settings
) -> None:
    make_what_messy_names(db, org)
    key = factories.make_api_key(db, org)
    job = start(client, key, dry_run="false", send_invitations="true")
    run_jobs(database, settings)
    done = client.get(f"/api/v1/jobs/{job['id']}", headers=bearer(key)).json()
    assert (done["done"], done["failed"]) == (3, 3)  # ann, old, di; bad email, team, repeat
    failed = client.get(
        f"/api/v1/jobs/{job['id']}", params={"failed_only": "true"}, headers=bearer(key)
    ).json()["result"]
    assert [row["row"] for row in failed] == [3, 6, 7]
    ann = db.scalars(select(User).where(User.email == "ann@example.com")).one()
    assert ann.status == "pending"
    assert ann.created_via == "import"
    assert db.scalar(select(Invitation.status).where(Invitation.user_id == ann.id)) == "pending"
    assert db.scalars(
        select(OutboxMessage).where(OutboxMessage.recipient == "ann@example.com")
    ).one()
    di = db.scalars(select(User).where(User.email == "di@example.com")).one()
    assert di.last_name == "O'Neil, Jr"
    second = start(client, key, dry_run="false")
    run_jobs(database, settings)
    again = client.get(f"/api/v1/jobs/{second['id']}", headers=bearer(key)).json()
    assert {row["fate"] for row in again["result"]} <= {"exists", "invalid"}
    assert (
        db.scalar(
            select(func.count()).select_from(User).where(User.email_normalized == "ann@example.com")
        )
        == 1
    )


def test_an_import_needs_users_import_and_a_readable_file(
    client: TestClient, db: Session, org: Organization
) -> None:
    agent = factories.make_api_key(db, org, "Agent")
    refused = client.post(
        "/api/v1/imports", files={"file": ("a.csv", b"email\n", "text/csv")}, headers=bearer(agent)
    )
    assert refused.status_code == 403
    key = factories.make_api_key(db, org)
    no_email = client.post(
        "/api/v1/imports",
        files={"file": ("a.csv", b"name,team\nx,y\n", "text/csv")},
        headers=bearer(key),
    )
    assert no_email.status_code == 400
    assert no_email.json()["errors"][0]["field"] == "mapping"
    binary = client.post(
        "/api/v1/imports",
        files={"file": ("a.csv", b"\xff\xfe\x00", "text/csv")},
        headers=bearer(key),
    )
    assert binary.status_code == 400
    assert binary.json()["errors"][0]["field"] == "file"


@pytest.mark.parametrize("mapping", ["not json", "[1]", '"email"', '{"email": 1}'])
def test_a_mapping_that_is_not_an_object_of_column_names_is_refused_naming_it(
    client: TestClient, db: Session, org: Organization, mapping: str
) -> None:
    """A mapping that is not JSON, or JSON but not an object of column names, is a 400
    naming the mapping, not a server error."""
    key = factories.make_api_key(db, org)
    response = client.post(
        "/api/v1/imports",
        files={"file": ("a.csv", b"email\nann@example.com\n", "text/csv")},
        data={"mapping": mapping},
        headers=bearer(key),
    )
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["field"] == "mapping"


def test_each_imported_user_is_audited_with_the_file_and_row(
    client: TestClient, db: Session, org: Organization, database: BoundDatabase, settings: Settings
) -> None:
    make_what_messy_names(db, org)
    key = factories.make_api_key(db, org)
    start(client, key, dry_run="false")
    run_jobs(database, settings)
    ann = db.scalars(select(User).where(User.email == "ann@example.com")).one()
    (event,) = db.scalars(
        select(AuditEvent).where(
            AuditEvent.target_type == "user", AuditEvent.target_id == str(ann.id)
        )
    ).all()
    assert event.action == "user.imported"
    assert event.actor_name.startswith("API key")
    assert event.changes == {
        "email": "ann@example.com",
        "team": "Sales",
        "groups": ["VIP", "Beta"],
        "email_sent": False,
        "file": "people.csv",
        "row": 2,
    }
    imported = db.scalar(
        select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "user.imported")
    )
    assert imported == 3
    timeline = client.get(f"/api/v1/users/{ann.id}/activity", headers=bearer(key)).json()
    assert [entry["action"] for entry in timeline["items"]] == ["user.imported"]
    db.expire_all()
    assert audit.verify_chain(db, organization_id=org.id) == []


def test_events_recorded_in_bulk_chain_on_from_those_before_them(
    db: Session, org: Organization
) -> None:
    actor = system_actor(org.id, "tests")
    audit.record(db, actor=actor, action="test.before")
    impersonating = dataclasses.replace(actor, impersonator_id=None, impersonator_name="Bob Admin")
    audit.record_many(
        db,
        actor=impersonating,
        action="test.many",
        target_type="user",
        targets=[(1, {"n": 1}), (2, {"n": 2, "names": ["a", "b"]})],
    )
    audit.record(db, actor=actor, action="test.after")
    db.expire_all()
    events = db.scalars(
        select(AuditEvent).where(AuditEvent.organization_id == org.id).order_by(AuditEvent.id)
    ).all()
    assert [e.action for e in events] == ["test.before", "test.many", "test.many", "test.after"]
    assert [e.impersonator_name for e in events[1:3]] == ["Bob Admin", "Bob Admin"]
    assert audit.verify_chain(db, organization_id=org.id) == []
    db.execute(
        AuditEvent.__table__.update()
        .where(AuditEvent.id == events[2].id)
        .values(changes={"n": 3, "names": ["a", "b"]})
    )
    db.expire_all()
    (found,) = audit.verify_chain(db, organization_id=org.id)
    assert found.event_id == events[2].id


def test_a_batch_that_fails_midway_leaves_nothing_and_runs_again(
    db: Session, org: Organization, database: BoundDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(imports, "BATCH", 2)
    actor = system_actor(org.id, "tests")
    content = "email\n" + "".join(f"p{n}@example.com\n" for n in range(5))
    with database.unit_of_work() as session:
        draft = imports.draft(session, actor=actor, filename="p.csv", content=content.encode())
        job_id = imports.start(session, actor=actor, job_id=draft.id, dry_run=False).id
    real = invitations.invite_imported
    calls = []

    def failing_the_second_time(*args: object, **kwargs: object) -> None:
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("the disk is full")
        real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(invitations, "invite_imported", failing_the_second_time)

    def step() -> bool:
        with database.unit_of_work() as session:
            return jobs.step(session, job=session.get_one(Job, job_id), base_url="http://x")

    def imported() -> list[tuple[str, int, int]]:
        """Each imported user's email, invitations and audit events."""
        users = db.scalars(select(User).where(User.organization_id == org.id)).all()
        return sorted(
            (
                user.email,
                len(db.scalars(select(Invitation).where(Invitation.user_id == user.id)).all()),
                len(
                    db.scalars(
                        select(AuditEvent).where(
                            AuditEvent.target_type == "user",
                            AuditEvent.target_id == str(user.id),
                        )
                    ).all()
                ),
            )
            for user in users
        )

    assert step() is False
    with pytest.raises(RuntimeError):
        step()
    assert imported() == [("p0@example.com", 1, 1), ("p1@example.com", 1, 1)]
    assert db.get_one(Job, job_id).cursor == 2
    while not step():
        pass
    assert imported() == [(f"p{n}@example.com", 1, 1) for n in range(5)]
    job = db.get_one(Job, job_id)
    assert (job.status, job.done, job.failed) == ("done", 5, 0)
    assert [item["row"] for item in jobs.items(db, job)] == [2, 3, 4, 5, 6]


def test_the_file_is_kept_beside_the_job_not_in_it(
    client: TestClient, db: Session, org: Organization
) -> None:
    key = factories.make_api_key(db, org)
    job = start(client, key)
    assert "csv" not in job["params"]
    kept = db.get_one(ImportFile, int(job["id"]))
    assert kept.content == MESSY
    assert "csv" not in db.get_one(Job, int(job["id"])).params
