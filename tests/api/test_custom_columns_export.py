"""The export writes the custom columns of the view: chosen ones in the console and the
API, every field not archived from the CLI; each value as its type says (dates ISO, lists
joined with ";", yes/no), text quoted and defused. On each database (the attributes come
as JSON text from SQLite's driver, as a dict from PostgreSQL's)."""

from __future__ import annotations

import csv
import io
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests import factories
from userdesk.access import service as access
from userdesk.access.rules import system_actor
from userdesk.organizations.models import Organization
from userdesk.segments import service as segments
from userdesk.segments.schemas import SegmentCreate, SegmentUpdate
from userdesk.users import attributes, fields
from userdesk.users.attributes import Party
from userdesk.users.field_schemas import UserFieldCreate

SPECS: list[dict[str, Any]] = [
    {"key": "plan", "type": "choice", "options": ["Free", "Pro"]},
    {"key": "seats", "type": "number"},
    {"key": "beta", "type": "boolean"},
    {"key": "since", "type": "date"},
    {"key": "company", "type": "text"},
    {"key": "langs", "type": "choices", "options": ["en", "fr", "mi"]},
    {"key": "roles_note", "type": "text"},
]


def _arranged(db: Session, org: Organization) -> None:
    actor = system_actor(org.id, "tests")
    for spec in SPECS:
        fields.create_field(
            db, actor=actor, data=UserFieldCreate(label=spec["key"].title(), **spec)
        )
    values = {
        "ann@example.com": {
            "plan": "pro",
            "seats": 12,
            "beta": True,
            "since": "2024-02-29",
            "company": '=cmd|"x" & Co',
            "langs": ["mi", "en"],
        },
        "bo@example.com": {"seats": 2.5, "beta": False},
        "cy@example.com": {},
    }
    for email, given in values.items():
        user = factories.make_user(db, org, email=email)
        checked = attributes.checked(db, organization_id=org.id, values=given, party=Party.SYSTEM)
        attributes.write(db, user, checked)
    db.flush()


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_the_console_export_writes_the_chosen_columns_formatted_by_type(
    client: TestClient, db: Session, org: Organization
) -> None:
    _arranged(db, org)
    admin = factories.make_admin(db, org)
    factories.login(client, admin.email)
    response = client.get(
        "/console/users/export",
        params={
            "q": "example.com",
            "sort": "email",
            "columns": "since,plan,seats,beta,langs,company",
        },
    )
    assert response.status_code == 200
    header = response.text.split("\r\n", 1)[0]
    assert header.endswith(",churn_probability,since,plan,seats,beta,langs,company")
    by_email = {r["email"]: r for r in _rows(response.text)}
    ann, bo, cy = (by_email[f"{n}@example.com"] for n in ("ann", "bo", "cy"))
    assert (ann["since"], ann["plan"], ann["seats"], ann["beta"]) == (
        "2024-02-29",
        "Pro",
        "12",
        "yes",
    )
    assert ann["langs"] == "mi;en"
    assert ann["company"] == '\'=cmd|"x" & Co'  # defused, as names are
    assert (bo["seats"], bo["beta"], bo["plan"], bo["langs"]) == ("2.5", "no", "", "")
    assert all(cy[k] == "" for k in ("since", "plan", "seats", "beta", "langs", "company"))
    plain = client.get("/console/users/export", params={"q": "example.com"})
    assert plain.text.split("\r\n", 1)[0].endswith(",churn,churn_probability")
    bad = client.get("/console/users/export", params={"columns": "plan,colour"})
    assert bad.status_code == 400
    assert "colour" in bad.text


def test_the_api_export_takes_columns_and_a_built_in_name_is_not_reused(
    client: TestClient, db: Session, org: Organization
) -> None:
    _arranged(db, org)
    fields.create_field(
        db,
        actor=system_actor(org.id, "tests"),
        data=UserFieldCreate(key="roles", label="Roles (theirs)", type="text"),
    )
    key = factories.make_api_key(db, org)
    response = client.get(
        "/api/v1/users/export",
        params={"q": "ann@", "columns": "roles,seats"},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert response.status_code == 200
    assert response.text.split("\r\n", 1)[0].endswith(",attributes.roles,seats")
    (ann,) = _rows(response.text)
    assert ann["seats"] == "12"


def test_a_segment_keeps_its_columns_through_the_api(
    client: TestClient, db: Session, org: Organization
) -> None:
    _arranged(db, org)
    admin = factories.make_admin(db, org)
    actor = access.actor_for_user(db, admin)
    segment = segments.create_segment(
        db, actor=actor, data=SegmentCreate(name="Pro", query="plan:pro", columns=["seats", "plan"])
    )
    assert segment.columns == ["seats", "plan"]
    updated = segments.update_segment(
        db, actor=actor, segment_id=segment.id, data=SegmentUpdate(columns=["beta"])
    )
    assert updated.columns == ["beta"]
    key = factories.make_api_key(db, org)
    listed = client.get("/api/v1/segments", headers={"Authorization": f"Bearer {key}"})
    assert listed.status_code == 200
    refused = client.post(
        "/api/v1/segments",
        json={"name": "Bad", "query": "", "shared": True, "columns": ["colour"]},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert refused.status_code == 400
    assert [e["field"] for e in refused.json()["errors"]] == ["columns"]
    saved = client.post(
        "/api/v1/segments",
        json={"name": "Good", "query": "", "shared": True, "columns": ["langs"]},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert saved.status_code == 201, saved.text
    assert saved.json()["columns"] == ["langs"]


def test_numbers_at_the_bounds_of_a_number_field_are_exported_whole(
    client: TestClient, db: Session, org: Organization
) -> None:
    """The export reads attributes with orjson and keeps each value's cell: the largest
    numbers a field takes come out digit for digit, and a cell kept for one user is
    another's only for the same value."""
    _arranged(db, org)
    huge = 10**15  # field_rules.NUMBER_MAX
    for email, seats in (("dee@example.com", huge), ("eve@example.com", -huge)):
        user = factories.make_user(db, org, email=email)
        checked = attributes.checked(
            db, organization_id=org.id, values={"seats": seats}, party=Party.SYSTEM
        )
        attributes.write(db, user, checked)
    db.flush()
    key = factories.make_api_key(db, org)
    response = client.get(
        "/api/v1/users/export",
        params={"q": "example.com", "sort": "email", "columns": "seats,plan"},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert response.status_code == 200
    seats = {r["email"]: (r["seats"], r["plan"]) for r in _rows(response.text)}
    assert seats["dee@example.com"] == ("1000000000000000", "")
    assert seats["eve@example.com"] == (str(-huge), "")
    assert seats["ann@example.com"] == ("12", "Pro")
    assert seats["bo@example.com"] == ("2.5", "")
