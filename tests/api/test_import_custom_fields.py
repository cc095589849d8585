"""The import fills custom fields: its mapping offers them (guessed from a column's name
or the field's label), each cell is checked as its field's type says and a bad one is
named by row, column and field; the values land in the attributes and in the index the
query language reads."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests import factories
from tests.conftest import BoundDatabase
from userdesk.access import service as access
from userdesk.access.rules import system_actor
from userdesk.config import Settings
from userdesk.errors import InvalidInput
from userdesk.imports import service as imports
from userdesk.organizations.models import Organization
from userdesk.users import fields
from userdesk.users.field_schemas import UserFieldCreate
from userdesk.users.models import User
from userdesk.worker import Worker

FILE = (
    "Email,Plan,Seats,Customer since,Languages,Beta,Notes\r\n"
    "ann@example.com,pro,12,2024-02-29,en;mi,yes,Likes <b>tea</b>\r\n"
    "bo@example.com,Gold,3,,,,\r\n"
    "cy@example.com,Free,many,,,,\r\n"
    "di@example.com,,,2025-13-01,,,\r\n"
    "ed@example.com,,,,de,,\r\n"
    "fy@example.com,,,,,maybe,\r\n"
    "gu@example.com,,2.5,,,no,\r\n"
)
SPECS: list[dict[str, Any]] = [
    {"key": "plan", "label": "Plan", "type": "choice", "options": ["Free", "Pro"]},
    {"key": "seats", "label": "Seats", "type": "number"},
    {"key": "since", "label": "Customer since", "type": "date"},
    {"key": "langs", "label": "Languages", "type": "choices", "options": ["en", "fr", "mi"]},
    {"key": "beta", "label": "Beta", "type": "boolean"},
    {"key": "internal", "label": "Notes", "type": "text", "editable_by": "system"},
]


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def run_jobs(database: BoundDatabase, settings: Settings) -> None:
    worker = Worker(database, dataclasses.replace(settings, smtp_url=None))
    while worker.run_jobs():
        pass


def _fields(db: Session, org: Organization) -> None:
    actor = system_actor(org.id, "tests")
    for spec in SPECS:
        fields.create_field(db, actor=actor, data=UserFieldCreate(**spec))


def test_custom_columns_are_mapped_checked_by_type_and_imported(
    client: TestClient, db: Session, org: Organization, database: BoundDatabase, settings: Settings
) -> None:
    _fields(db, org)
    key = factories.make_api_key(db, org)
    response = client.post(
        "/api/v1/imports",
        files={"file": ("people.csv", FILE.encode(), "text/csv")},
        data={"dry_run": "false"},
        headers=bearer(key),
    )
    assert response.status_code == 202, response.text
    job = response.json()
    mapping = job["params"]["mapping"]
    assert mapping["attributes.plan"] == "Plan"
    assert mapping["attributes.since"] == "Customer since"
    assert mapping["attributes.langs"] == "Languages"
    assert mapping["attributes.internal"] == "Notes"  # an API key is the system
    run_jobs(database, settings)
    done = client.get(f"/api/v1/jobs/{job['id']}", headers=bearer(key)).json()
    fates = {row["row"]: (row["fate"], row.get("detail", "")) for row in done["result"]}
    assert fates[2] == ("created", "")
    assert fates[3][0] == "invalid"
    assert fates[3][1].startswith("column 'Plan' (plan): 'Gold' is not one of the choices")
    assert fates[4] == ("invalid", "column 'Seats' (seats): 'many' is not a number")
    assert fates[5] == (
        "invalid",
        "column 'Customer since' (since): '2025-13-01' is not a date like 2025-01-31",
    )
    assert fates[6][1].startswith("column 'Languages' (langs): 'de' is not one of the choices")
    assert fates[7] == ("invalid", "column 'Beta' (beta): 'maybe' is not yes or no")
    assert fates[8] == ("created", "")
    ann = db.scalars(select(User).where(User.email == "ann@example.com")).one()
    assert ann.attributes == {
        "plan": "Pro",
        "seats": 12,
        "since": "2024-02-29",
        "langs": ["en", "mi"],
        "beta": True,
        "internal": "Likes <b>tea</b>",
    }
    gu = db.scalars(select(User).where(User.email == "gu@example.com")).one()
    assert gu.attributes == {"seats": 2.5, "beta": False}
    # The index rows the query language reads were written with them.
    for q, emails in (
        ("plan:pro", ["ann@example.com"]),
        ("seats:>2", ["ann@example.com", "gu@example.com"]),
        ("since:<2025-01-01 langs:mi", ["ann@example.com"]),
        ("beta:no", ["gu@example.com"]),
        ("has:internal", ["ann@example.com"]),
    ):
        found = client.get("/api/v1/users", params={"q": q, "sort": "email"}, headers=bearer(key))
        assert found.status_code == 200, found.text
        assert [u["email"] for u in found.json()["items"]] == emails, q
    read = client.get(f"/api/v1/users/{ann.id}", headers=bearer(key)).json()
    assert read["attributes"]["langs"] == ["en", "mi"]


def test_the_console_offers_the_fields_an_admin_may_fill_and_refuses_others(
    client: TestClient, db: Session, org: Organization, database: BoundDatabase, settings: Settings
) -> None:
    _fields(db, org)
    admin = factories.make_admin(db, org)
    token = factories.login(client, admin.email)
    uploaded = client.post(
        "/console/imports",
        files={"file": ("people.csv", FILE.encode(), "text/csv")},
        data={"csrf_token": token},
    )
    assert uploaded.status_code == 303
    form = client.get(uploaded.headers["location"]).text
    assert 'name="map_attributes.seats"' in form
    assert "<option selected>Seats</option>" in form
    assert 'name="map_attributes.internal"' not in form  # only the system edits it
    data = {"csrf_token": token, "map_email": "Email", "map_attributes.seats": "Seats"}
    started = client.post(uploaded.headers["location"], data={**data, "dry_run": "false"})
    assert started.status_code == 303, started.text
    run_jobs(database, settings)
    gu = db.scalars(select(User).where(User.email == "gu@example.com")).one()
    assert gu.attributes == {"seats": 2.5}
    assert db.scalars(select(User).where(User.email == "bo@example.com")).one().attributes == {
        "seats": 3
    }
    job_id = int(uploaded.headers["location"].rsplit("/", 1)[1])
    actor = access.actor_for_user(db, admin)
    with pytest.raises(InvalidInput) as refused:
        imports.start(
            db,
            actor=actor,
            job_id=job_id,
            mapping={"email": "Email", "attributes.internal": "Notes"},
        )
    assert "'internal' is not a field an import may fill" in refused.value.fields["mapping"]
