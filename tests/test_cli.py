"""The CLI against a real SQLite file, as an operator would run it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from tests.conftest import make_settings
from userdesk.cli import app
from userdesk.config import get_settings
from userdesk.db.session import Database
from userdesk.web.app import create_app

runner = CliRunner()


@pytest.fixture
def database_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = f"sqlite:///{tmp_path}/cli.db"
    monkeypatch.setenv("USERDESK_DATABASE_URL", url)
    monkeypatch.setenv("USERDESK_VAR_DIR", str(tmp_path))
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


def run(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_an_operator_migrates_adds_an_admin_demo_users_and_an_api_key(
    database_url: str, tmp_path: Path
) -> None:
    run("migrate")
    assert "Created Administrator" in run(
        "create-admin", "--email", "ops@example.com", "--password", "long enough pw"
    )
    assert "Reset the password" in run(
        "create-admin", "--email", "OPS@example.com", "--password", "another long pw"
    )
    assert "Added 120 users" in run("demo", "--users", "120", "--seed", "5")
    key = run("api-key", "create", "--name", "host product", "--role", "Agent").strip()
    assert key.startswith("ud_")

    database = Database.from_url(database_url)
    client = TestClient(create_app(make_settings(tmp_path, database_url), database))
    response = client.get("/api/v1/users?limit=500", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200
    assert len(response.json()["items"]) == 121
    database.dispose()


def test_bad_input_is_printed_with_the_field_and_exits_non_zero(database_url: str) -> None:
    run("migrate")
    result = runner.invoke(app, ["create-admin", "--email", "not-an-email", "--password", "short"])
    assert result.exit_code == 1
    assert "'not-an-email' is not an email address" in result.output
    assert "password: must be at least 8 characters" in result.output


def test_a_team_scoped_key_needs_a_team(database_url: str) -> None:
    run("migrate")
    run("create-admin", "--email", "ops@example.com", "--password", "long enough pw")
    result = runner.invoke(
        app, ["api-key", "create", "--name", "k", "--role", "Team Administrator"]
    )
    assert result.exit_code == 1
    assert "team" in result.output
    unknown = runner.invoke(app, ["api-key", "create", "--name", "k", "--role", "Wizard"])
    assert unknown.exit_code == 1
    assert "'Wizard' is not a role" in unknown.output


def test_audit_verify_names_the_first_edited_event_and_fails(database_url: str) -> None:
    from sqlalchemy import update

    from userdesk.audit.models import AuditEvent

    run("migrate")
    run("create-admin", "--email", "ops@example.com", "--password", "long enough pw")
    run("api-key", "create", "--name", "one", "--role", "Agent")
    run("api-key", "create", "--name", "two", "--role", "Agent")
    assert "The audit log is intact: 3 events checked." in run("audit", "verify")
    database = Database.from_url(database_url)
    with database.unit_of_work() as db:
        second = db.scalars(select(AuditEvent.id).order_by(AuditEvent.id)).all()[1]
        db.execute(update(AuditEvent).where(AuditEvent.id == second).values(reason="edited"))
    database.dispose()
    result = runner.invoke(app, ["audit", "verify"])
    assert result.exit_code == 1
    assert f"audit event {second}" in result.output


def test_export_writes_the_matching_users_as_csv(database_url: str, tmp_path: Path) -> None:
    run("migrate")
    run("create-admin", "--email", "ops@example.com", "--password", "long enough pw")
    run("demo", "--users", "30", "--seed", "2")
    target = tmp_path / "out.csv"
    run("export", "--q", "status:pending", "-o", str(target))
    lines = target.read_text().splitlines()
    assert lines[0].startswith("first_name,last_name,email,status")
    assert len(lines) > 1
    assert all(",pending," in line for line in lines[1:])
    refused = runner.invoke(app, ["export", "--q", "colour:red"])
    assert refused.exit_code == 1


def test_import_reports_each_row_and_imports_once(database_url: str, tmp_path: Path) -> None:
    run("migrate")
    run("create-admin", "--email", "ops@example.com", "--password", "long enough pw")
    source = tmp_path / "people.csv"
    source.write_text("email,first name\nann@example.com,Ann\nbroken,Bob\n")
    dry = run("import", str(source), "--dry-run")
    assert "row 3: invalid" in dry
    assert "1 would be created, 1 not." in dry
    assert "1 created, 1 not." in run("import", str(source))
    assert "0 created, 2 not." in run("import", str(source))
