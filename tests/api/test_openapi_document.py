"""The OpenAPI document says how each operation fails, and the bounds of what it takes."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests import factories
from userdesk.organizations.models import Organization

PROBLEM = "application/problem+json"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in {"get", "post", "put", "patch", "delete"}
    ]


def parameter(operation: dict[str, Any], name: str) -> dict[str, Any]:
    return next(p for p in operation["parameters"] if p["name"].lower() == name)


def test_every_operation_documents_its_errors_as_problems_and_bad_input_as_400(
    client: TestClient,
) -> None:
    """No operation lists FastAPI's 422: bad input is a 400 problem, like every error."""
    document = client.get("/api/v1/openapi.json").json()
    assert "HTTPValidationError" not in document["components"]["schemas"]
    found = operations(document)
    assert len(found) > 50
    for method, path, operation in found:
        responses = operation["responses"]
        assert "422" not in responses, (method, path)
        if path.startswith("/scim/v2/"):  # SCIM errors: tests/web/test_scim_openapi.py
            continue
        for status in ("401", "403"):
            assert PROBLEM in responses[status]["content"], (method, path, status)
        if operation.get("parameters") or "requestBody" in operation:
            assert PROBLEM in responses["400"]["content"], (method, path)
        if "{" in path:
            assert "404" in responses, (method, path)
        if method != "get":
            assert "409" in responses, (method, path)


def test_an_edit_documents_that_if_match_is_required_and_what_a_stale_one_gets(
    client: TestClient,
) -> None:
    """PATCH /users/{id} answers 428 without If-Match and 412 when stale: both documented."""
    document = client.get("/api/v1/openapi.json").json()
    operation = document["paths"]["/api/v1/users/{user_id}"]["patch"]
    assert parameter(operation, "if-match")["required"] is True
    assert {"412", "428"} <= set(operation["responses"])


def test_the_document_bounds_limits_days_and_names_as_the_services_do(client: TestClient) -> None:
    """Each number and name carries the bounds past which the service refuses it."""
    document = client.get("/api/v1/openapi.json").json()
    paths, schemas = document["paths"], document["components"]["schemas"]
    limits = {
        "/api/v1/users": 500,
        "/api/v1/audit": 500,
        "/api/v1/users/{user_id}/activity": 200,
    }
    for path, most in limits.items():
        bounds = parameter(paths[path]["get"], "limit")["schema"]
        assert (bounds["minimum"], bounds["maximum"]) == (1, most), path
    days = schemas["ActionBody"]["properties"]["days"]["anyOf"][0]
    assert (days["minimum"], days["maximum"]) == (1, 3650)
    name = schemas["NameBody"]["properties"]["name"]
    assert (name["minLength"], name["maxLength"]) == (1, 100)
    assert parameter(paths["/api/v1/users/{user_id}"]["get"], "user_id")["schema"]["maximum"] == (
        2**63 - 1
    )


def test_a_throttled_operation_documents_its_429_and_when_to_try_again(
    client: TestClient,
) -> None:
    """Verification emails are throttled per user: the 429 is a problem with Retry-After."""
    document = client.get("/api/v1/openapi.json").json()
    operation = document["paths"]["/api/v1/users/{user_id}/verification-email"]["post"]
    answer = operation["responses"]["429"]
    assert PROBLEM in answer["content"]
    assert "Retry-After" in answer["headers"]


def test_the_document_names_both_ways_to_authenticate(client: TestClient) -> None:
    """An API key (Bearer) or a console session (cookie) authenticates every operation."""
    document = client.get("/api/v1/openapi.json").json()
    schemes = document["components"]["securitySchemes"]
    assert schemes["apiKey"]["scheme"] == "bearer"
    assert (schemes["session"]["in"], schemes["session"]["name"]) == ("cookie", "userdesk_session")
    assert document["security"] == [{"apiKey": []}, {"session": []}]


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("OPTIONS", "/api/v1/users/1", "DELETE, GET, PATCH"),
        ("PUT", "/api/v1/segments/1", "DELETE, GET, PATCH"),
        ("PATCH", "/api/v1/users/counts", "GET"),
        ("POST", "/api/v1/users/1/churn", "GET"),
        ("POST", "/api/v1/users/1/business-hours", "PUT"),
        ("DELETE", "/api/v1/users", "GET, POST"),
    ],
)
def test_a_method_a_path_does_not_take_is_a_405_naming_every_method_it_does(
    client: TestClient, method: str, path: str, allowed: str
) -> None:
    """The Allow of a 405 lists the methods of every route at that path, not the first's."""
    response = client.request(method, path)
    assert response.status_code == 405, response.text
    assert response.headers["Allow"] == allowed
    assert response.headers["Content-Type"] == PROBLEM


def test_a_console_page_s_405_names_its_methods_too(client: TestClient) -> None:
    """Outside the API a 405 is a page, with the same Allow."""
    response = client.request("PUT", "/login")
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET, POST"


@pytest.mark.parametrize("value", ["0", "1700000000", "2026-13-01", "yesterday"])
def test_the_audit_log_takes_until_as_a_date_only(
    client: TestClient, db: Session, org: Organization, value: str
) -> None:
    """`until=0` was read as 1970-01-01: a date is ISO 8601 text, else a 400 naming it."""
    key = factories.make_api_key(db, org)
    response = client.get("/api/v1/audit", params={"until": value}, headers=bearer(key))
    assert response.status_code == 400, response.text
    assert [e["field"] for e in response.json()["errors"]] == ["until"]
    fine = client.get("/api/v1/audit", params={"until": "2026-01-31"}, headers=bearer(key))
    assert fine.status_code == 200


@pytest.mark.parametrize("value", [0, 1700000000, "0", True])
def test_a_scoring_run_takes_as_of_as_a_moment_only(
    client: TestClient, db: Session, org: Organization, value: object
) -> None:
    """`as_of: 0` was a run as of 1970: a moment is ISO 8601 text, else a 400 naming it."""
    key = factories.make_api_key(db, org)
    response = client.post("/api/v1/churn/runs", json={"as_of": value}, headers=bearer(key))
    assert response.status_code == 400, response.text
    assert [e["field"] for e in response.json()["errors"]] == ["as_of"]


def test_a_flag_is_true_or_false_not_a_number(
    client: TestClient, db: Session, org: Organization
) -> None:
    """`"permanent": 0` is refused naming the field, as the document says it is a boolean."""
    key = factories.make_api_key(db, org)
    user = factories.make_user(db, org)
    response = client.post(
        f"/api/v1/users/{user.id}/validate", json={"permanent": 0}, headers=bearer(key)
    )
    assert response.status_code == 400, response.text
    assert [e["field"] for e in response.json()["errors"]] == ["permanent"]


@pytest.mark.parametrize("noun", ["groups", "teams"])
def test_a_name_taken_beyond_ascii_is_a_conflict_not_a_server_error(
    client: TestClient, db: Session, org: Organization, noun: str
) -> None:
    """Schemathesis found it: SQLite's lower() folds ASCII only, so 'Ölkännchen' twice
    passed the check and broke the unique index (500)."""
    key = factories.make_api_key(db, org)
    first = client.post(f"/api/v1/{noun}", json={"name": "Ölkännchen"}, headers=bearer(key))
    assert first.status_code == 201, first.text
    again = client.post(f"/api/v1/{noun}", json={"name": "Ölkännchen"}, headers=bearer(key))
    assert again.status_code == 409, again.text
    assert again.json()["code"] == "name_taken"
