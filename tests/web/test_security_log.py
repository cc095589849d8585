"""The security log: sign-ins and refused requests, one JSON line each, nothing secret."""

from __future__ import annotations

import json
import logging

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests import factories
from userdesk.organizations.models import Organization


def events(caplog: pytest.LogCaptureFixture) -> list[dict[str, object]]:
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == "userdesk.security"]


def test_sign_ins_and_refusals_are_logged_as_json_without_secrets(
    client: TestClient, db: Session, org: Organization, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="userdesk.security")
    admin = factories.make_admin(db, org)
    page = client.get("/login").text
    form = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    client.post(
        "/login", data={"email": admin.email, "password": "wrong guess!", "csrf_token": form}
    )
    csrf = factories.login(client, admin.email)
    client.post("/api/v1/groups", json={"name": "x"})  # no CSRF token: 403
    client.get("/api/v1/users?limit=0", headers={"X-CSRF-Token": csrf})  # bad input: 400
    key = factories.make_api_key(db, org, "Agent")
    client.cookies.clear()
    client.post(
        "/api/v1/groups", json={"name": "y"}, headers={"Authorization": f"Bearer {key}"}
    )  # 403
    client.get("/invite/" + "t" * 43)  # a token page: never logged whole
    logged = events(caplog)
    sign_ins = [e for e in logged if e["event"] == "sign_in"]
    assert [e["outcome"] for e in sign_ins] == ["failure", "success"]
    assert sign_ins[0]["reason"] == "auth.invalid_credentials"
    assert sign_ins[1]["user_id"] == admin.id
    assert all(e["at"].endswith("+00:00") for e in logged)  # type: ignore[union-attr]
    refused = [
        (e["outcome"], e["method"], e["path"]) for e in logged if e["event"] == "request_refused"
    ]
    assert ("403", "POST", "/api/v1/groups") in refused
    assert ("400", "GET", "/api/v1/users?limit=0") in refused
    denied = [e for e in logged if e["event"] == "request_refused" and e["outcome"] == "403"]
    assert {e.get("user_id") for e in denied} >= {admin.id}
    assert any(e.get("api_key_id") for e in denied)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert admin.email not in text
    assert "wrong guess!" not in text
    assert "t" * 43 not in text
    assert key not in text


def test_a_line_cannot_be_forged_through_what_is_logged(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="userdesk.security")
    client.get('/api/v1/users/1?x=%0A{"event":"sign_in","outcome":"success"}')
    lines = [r.getMessage() for r in caplog.records if r.name == "userdesk.security"]
    assert lines
    assert all("\n" not in line for line in lines)
    assert [json.loads(line)["event"] for line in lines] == ["request_refused"]
