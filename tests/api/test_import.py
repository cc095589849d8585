"""Importing a messy CSV: a dry run tells each row's fate, a real run creates the good
rows as Not Activated users, and the same file twice creates nobody twice."""

from __future__ import annotations

import dataclasses

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests import factories
from tests.conftest import BoundDatabase
from userdesk.config import Settings
from userdesk.invitations.models import Invitation
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
    factories.make_team(db, org, "Sales")
    factories.make_group(db, org, "VIP")
    factories.make_group(db, org, "Beta")
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
    factories.make_team(db, org, "Sales")
    factories.make_group(db, org, "VIP")
    factories.make_group(db, org, "Beta")
    key = factories.make_api_key(db, org)
    job = start(client, key, dry_run="false", send_invitations="true")
    run_jobs(database, settings)
    done = client.get(f"/api/v1/jobs/{job['id']}", headers=bearer(key)).json()
    assert (done["done"], done["failed"]) == (3, 3)  # ann, old, di; bad email, team, repeat
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
