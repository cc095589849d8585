"""Bad input through the API is a 400 problem naming the field, never a 500 (issue 16, break 5).

Each probe ran into the driver or the database on main: an id beyond 64 bits overflowed
the driver, a NUL broke SQLite's full-text index and every PostgreSQL text column, a lone
surrogate could not be encoded, a cell over 128 KiB stopped the csv module, and the email
pattern let through addresses no mail server takes.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests import factories
from userdesk.imports.rules import MAX_CELL, MAX_COLUMNS
from userdesk.organizations.models import Organization

HUGE = "99999999999999999999999"  # beyond 2**63 - 1
JUST_OVER = str(2**63)
BAD_EMAILS = (
    "a@b.\x00c",
    "x@acme.test,X",
    "<script>@x.test",
    "x@-acme.test",
    "x@acme..test",
    "nobody",
    "two@@example.com",
    "x@localhost",
    "x@[127.0.0.1]",
)


@pytest.fixture
def key(db: Session, org: Organization) -> str:
    return factories.make_api_key(db, org)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def problem_fields(response: Any) -> list[str]:
    assert response.status_code == 400, (response.status_code, response.text)
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["code"] in ("invalid_input", "invalid_query")
    return [error["field"] for error in body["errors"]]


@pytest.mark.parametrize(
    ("method", "path", "field"),
    [
        ("GET", "/api/v1/users/{id}", "user_id"),
        ("GET", "/api/v1/users/{id}/activity", "user_id"),
        ("GET", "/api/v1/users/{id}/churn", "user_id"),
        ("POST", "/api/v1/users/{id}/disable", "user_id"),
        ("POST", "/api/v1/users/{id}/verification-email", "user_id"),
        ("GET", "/api/v1/users/{id}/outreach", "user_id"),
        ("POST", "/api/v1/users/1/outreach/{id}/done", "assignment_id"),
        ("DELETE", "/api/v1/roles/{id}", "role_id"),
        ("DELETE", "/api/v1/teams/{id}", "item_id"),
        ("DELETE", "/api/v1/groups/{id}", "item_id"),
        ("GET", "/api/v1/segments/{id}", "segment_id"),
        ("DELETE", "/api/v1/segments/{id}", "segment_id"),
        ("GET", "/api/v1/jobs/{id}", "job_id"),
        ("POST", "/api/v1/invitations/{id}/resend", "invitation_id"),
        ("POST", "/api/v1/invitations/{id}/revoke", "invitation_id"),
    ],
)
@pytest.mark.parametrize("value", [HUGE, JUST_OVER, "0"])
def test_an_id_beyond_64_bits_in_a_path_is_a_400_naming_it(
    client: TestClient, key: str, method: str, path: str, field: str, value: str
) -> None:
    """An id in a path outside 1 .. 2**63 - 1 is refused at the edge, naming the parameter."""
    response = client.request(method, path.format(id=value), headers=bearer(key))
    assert problem_fields(response) == [field]


def test_the_openapi_document_bounds_every_id_in_a_path(client: TestClient) -> None:
    """Every integer in a path is documented as 1 .. 2**63 - 1, so clients know the bound."""
    document = client.get("/api/v1/openapi.json").json()
    checked = 0
    for path, operations in document["paths"].items():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path" and parameter["schema"].get("type") == "integer":
                    assert parameter["schema"]["minimum"] == 1, (path, parameter)
                    assert parameter["schema"]["maximum"] == 2**63 - 1, (path, parameter)
                    checked += 1
    assert checked >= 30


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"group_ids": [HUGE]}, "group_ids[0]"),
        ({"role_ids": [JUST_OVER]}, "role_ids[0]"),
        ({"team_id": HUGE}, "team_id"),
        ({"group_ids": ["²"]}, "group_ids[0]"),
    ],
)
def test_an_id_beyond_64_bits_in_a_new_users_links_is_a_400_naming_it(
    client: TestClient, key: str, body: dict[str, Any], field: str
) -> None:
    """group_ids, role_ids and team_id hold ids within 64 bits (and decimal digits only)."""
    response = client.post(
        "/api/v1/users", json={"email": "links@example.com", **body}, headers=bearer(key)
    )
    assert field in problem_fields(response)


def test_an_id_beyond_64_bits_in_an_edit_is_a_400_naming_it(
    client: TestClient, db: Session, org: Organization, key: str
) -> None:
    """An edit's group_ids are checked the same way as a new user's."""
    user = factories.make_user(db, org)
    group = factories.make_group(db, org)
    response = client.patch(
        f"/api/v1/users/{user.id}",
        json={"group_ids": [str(group.id), HUGE]},
        headers={**bearer(key), "If-Match": f'W/"{user.version}"'},
    )
    assert problem_fields(response) == ["group_ids[1]"]


@pytest.mark.parametrize("path", ["/api/v1/users/bulk/preview", "/api/v1/users/bulk"])
def test_an_id_beyond_64_bits_in_a_bulk_selection_is_a_400_naming_it(
    client: TestClient, db: Session, org: Organization, key: str, path: str
) -> None:
    """Bulk ids are bounded: one out of range is named by its index."""
    user = factories.make_user(db, org)
    response = client.post(
        path,
        json={"action": "validate", "ids": [str(user.id), HUGE]},
        headers=bearer(key),
    )
    assert problem_fields(response) == ["ids[1]"]


def test_ids_beyond_64_bits_elsewhere_in_bodies_are_400s_naming_them(
    client: TestClient, db: Session, org: Organization, key: str
) -> None:
    """An outreach's agent_id, a group to add to, and an event's user_id are bounded too."""
    user = factories.make_user(db, org)
    outreach = client.post(
        f"/api/v1/users/{user.id}/outreach", json={"agent_id": HUGE}, headers=bearer(key)
    )
    assert problem_fields(outreach) == ["agent_id"]
    group = client.post(
        f"/api/v1/users/{user.id}/groups", json={"group_id": HUGE}, headers=bearer(key)
    )
    assert problem_fields(group) == ["group_id"]
    events = client.post(
        "/api/v1/events",
        json=[{"user_id": HUGE, "type": "ticket.created", "occurred_at": "2026-01-01"}],
        headers=bearer(key),
    )
    assert events.status_code < 500
    assert HUGE in events.text
    assert "is not an id" in events.text


@pytest.mark.parametrize("path", ["/api/v1/users", "/api/v1/users/counts", "/api/v1/users/export"])
@pytest.mark.parametrize("term", ["ann\x00", "\x00", "status:active \x00x"])
def test_a_nul_in_a_search_term_is_a_400_naming_q(
    client: TestClient, key: str, path: str, term: str
) -> None:
    """A NUL never reaches the full-text index (SQLite's errs on it, PostgreSQL refuses it)."""
    response = client.get(path, params={"q": term}, headers=bearer(key))
    assert problem_fields(response) == ["q"]
    assert "NUL" in response.json()["detail"]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/v1/users", {"email": "nul@example.com", "first_name": "An\x00n"}, "first_name"),
        ("/api/v1/users", {"email": "nul@example.com", "last_name": "\x00"}, "last_name"),
        ("/api/v1/segments", {"name": "Mine\x00"}, "name"),
        ("/api/v1/segments", {"name": "Mine", "query": "ann\x00"}, "query"),
        ("/api/v1/groups", {"name": "G\x00"}, "name"),
        ("/api/v1/teams", {"name": "T\x00"}, "name"),
        ("/api/v1/roles", {"name": "R\x00", "permissions": ["users.read"]}, "name"),
        ("/api/v1/users/bulk/preview", {"action": "validate", "q": "a\x00"}, "q"),
        (
            "/api/v1/invitations",
            {"people": [{"email": "a@example.com", "first_name": "\x00"}]},
            "people[0].first_name",
        ),
    ],
)
def test_a_nul_in_any_text_field_is_a_400_naming_it(
    client: TestClient, key: str, path: str, body: dict[str, Any], field: str
) -> None:
    """No text with a NUL is stored (PostgreSQL refuses it): the field is named instead."""
    response = client.post(path, json=body, headers=bearer(key))
    assert problem_fields(response) == [field]


def test_a_nul_in_an_edit_or_a_reason_is_a_400_naming_it(
    client: TestClient, db: Session, org: Organization, key: str
) -> None:
    """Edits and the reasons of moves are text like any other."""
    user = factories.make_user(db, org)
    edit = client.patch(
        f"/api/v1/users/{user.id}",
        json={"last_name": "Lee\x00"},
        headers={**bearer(key), "If-Match": f'W/"{user.version}"'},
    )
    assert problem_fields(edit) == ["last_name"]
    disable = client.post(
        f"/api/v1/users/{user.id}/disable", json={"reason": "\x00"}, headers=bearer(key)
    )
    assert problem_fields(disable) == ["reason"]


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b'{"email": "s@example.com", "first_name": "\\udc00"}', "first_name"),
        (b'{"email": "s@example.com", "last_name": "x\\ud800y"}', "last_name"),
        (b'{"email": "s\\udfff@example.com"}', "email"),
        (b'{"email": "s@example.com", "group_ids": ["\\udc00"]}', "group_ids[0]"),
    ],
)
def test_a_lone_surrogate_in_json_is_a_400_naming_the_field(
    client: TestClient, key: str, raw: bytes, field: str
) -> None:
    """Half of a UTF-16 pair is not text: no encoding stores it, so it is refused, named."""
    response = client.post(
        "/api/v1/users",
        content=raw,
        headers={**bearer(key), "Content-Type": "application/json"},
    )
    assert problem_fields(response) == [field]
    assert "surrogate" in response.json()["errors"][0]["detail"]


def test_a_whole_surrogate_pair_in_json_is_text_and_is_kept(client: TestClient, key: str) -> None:
    """An emoji escaped as its two halves is one character, and welcome."""
    response = client.post(
        "/api/v1/users",
        content=b'{"email": "emoji@example.com", "first_name": "Ann \\ud83d\\ude00"}',
        headers={**bearer(key), "Content-Type": "application/json"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["first_name"] == "Ann \U0001f600"


@pytest.mark.parametrize("email", BAD_EMAILS)
def test_an_invalid_email_is_a_400_naming_email(client: TestClient, key: str, email: str) -> None:
    """email-validator's rules decide, through every path that takes an address."""
    response = client.post("/api/v1/users", json={"email": email}, headers=bearer(key))
    assert problem_fields(response) == ["email"]


@pytest.mark.parametrize(
    "email",
    ["ann+news@example.com", "Ann.Lee@Example.COM", "jose@bücher.example", "a@sub.acme.test"],
)
def test_real_addresses_are_still_taken(client: TestClient, key: str, email: str) -> None:
    """Plus addressing, mixed case, an IDN domain and the .test domains of tests are fine."""
    response = client.post("/api/v1/users", json={"email": email}, headers=bearer(key))
    assert response.status_code == 201, response.text


def _upload(client: TestClient, key: str, content: bytes) -> Any:
    return client.post(
        "/api/v1/imports",
        files={"file": ("people.csv", content, "text/csv")},
        headers=bearer(key),
    )


def test_an_import_cell_with_a_nul_is_a_400_naming_the_row_and_column(
    client: TestClient, key: str
) -> None:
    """The file is refused before it is kept (PostgreSQL cannot store a NUL in text)."""
    response = _upload(
        client, key, b"email,first_name\nok@example.com,Ann\nnul@example.com,Bo\x00b\n"
    )
    assert problem_fields(response) == ["file"]
    detail = response.json()["errors"][0]["detail"]
    assert "Row 3, column 2 ('first_name')" in detail
    assert "NUL" in detail


def test_an_import_cell_over_128_kib_is_a_400_naming_the_row_and_column(
    client: TestClient, key: str
) -> None:
    """A cell longer than the csv module's 128 KiB (and than MAX_CELL) is named, not a 500."""
    notes = b"x" * (128 * 1024 + 1)
    response = _upload(client, key, b"email,notes\nok@example.com,short\nbig@example.com," + notes)
    assert problem_fields(response) == ["file"]
    detail = response.json()["errors"][0]["detail"]
    assert "Row 3, column 2 ('notes')" in detail
    assert f"{MAX_CELL:,}" in detail


def test_an_import_row_with_too_many_cells_is_a_400_naming_the_row(
    client: TestClient, key: str
) -> None:
    """A row is bounded in cells as a cell is in characters."""
    wide = b"," * MAX_COLUMNS
    response = _upload(client, key, b"email\nok@example.com\nwide@example.com" + wide + b"\n")
    assert problem_fields(response) == ["file"]
    assert "Row 3 has" in response.json()["errors"][0]["detail"]


def test_an_import_with_a_nul_in_its_mapping_or_filename_is_a_400(
    client: TestClient, key: str
) -> None:
    """The other text of an upload is checked too (the filename is kept in the job)."""
    mapping = client.post(
        "/api/v1/imports",
        files={"file": ("people.csv", b"email\nok@example.com\n", "text/csv")},
        data={"mapping": '{"email": "email\\u0000"}'},
        headers=bearer(key),
    )
    assert mapping.status_code == 400, mapping.text
    raw = (
        b"--cut\r\n"
        b'Content-Disposition: form-data; name="file"; filename="peo\x00ple.csv"\r\n'
        b"Content-Type: text/csv\r\n\r\n"
        b"email\nok@example.com\n\r\n"
        b"--cut--\r\n"
    )
    filename = client.post(
        "/api/v1/imports",
        content=raw,
        headers={**bearer(key), "Content-Type": "multipart/form-data; boundary=cut"},
    )
    assert filename.status_code == 400, filename.text
    assert filename.json()["errors"][0]["field"] == "file.filename"
