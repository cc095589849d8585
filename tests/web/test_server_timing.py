"""Server-Timing tells how long a request took inside the app: only when a setting says so."""

from __future__ import annotations

import dataclasses

import pytest
from fastapi.testclient import TestClient

from tests.conftest import BoundDatabase
from userdesk.config import Settings, load_settings
from userdesk.web.app import create_app


def test_no_response_carries_server_timing_by_default(client: TestClient) -> None:
    """Pages, the API, errors and anonymous forms answer without a Server-Timing header."""
    for path in ("/login", "/password/forgot", "/api/v1/users", "/no-such-page", "/healthz"):
        response = client.get(path)
        assert "server-timing" not in response.headers, path
    token = client.get("/password/forgot").text.split('name="csrf_token" value="', 1)[1]
    sent = client.post(
        "/password/forgot", data={"email": "a@example.com", "csrf_token": token.split('"')[0]}
    )
    assert sent.status_code == 200
    assert "server-timing" not in sent.headers


def test_the_setting_turns_server_timing_on(settings: Settings, database: BoundDatabase) -> None:
    """With server_timing on (the bench's), every response says how long the app took."""
    app = create_app(dataclasses.replace(settings, server_timing=True), database)
    with TestClient(app) as client:
        for path in ("/login", "/no-such-page"):
            header = client.get(path).headers["server-timing"]
            assert header.startswith("app;dur="), header
            assert float(header.removeprefix("app;dur=")) >= 0


@pytest.mark.parametrize(
    ("value", "expected"),
    [("", False), ("0", False), ("off", False), ("1", True), ("true", True), ("ON", True)],
)
def test_userdesk_server_timing_is_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object, value: str, expected: bool
) -> None:
    monkeypatch.setenv("USERDESK_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("USERDESK_SERVER_TIMING", value)
    assert load_settings().server_timing is expected


def test_an_unclear_userdesk_server_timing_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    monkeypatch.setenv("USERDESK_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("USERDESK_SERVER_TIMING", "maybe")
    with pytest.raises(ValueError, match="USERDESK_SERVER_TIMING='maybe'"):
        load_settings()


def test_the_default_is_off(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    monkeypatch.setenv("USERDESK_VAR_DIR", str(tmp_path))
    monkeypatch.delenv("USERDESK_SERVER_TIMING", raising=False)
    assert load_settings().server_timing is False
