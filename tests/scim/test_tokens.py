"""SCIM tokens: made by the CLI (shown once, kept as a hash), refused once revoked."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from tests.conftest import make_settings
from userdesk.access.rules import Actor, system_actor
from userdesk.auth.secrets import hash_token
from userdesk.cli import app
from userdesk.config import get_settings
from userdesk.db.session import Database
from userdesk.errors import InvalidInput, PermissionDenied
from userdesk.organizations.models import Organization
from userdesk.scim import tokens
from userdesk.scim.models import ScimToken
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


def test_the_cli_prints_a_token_once_that_provisions_users(
    database_url: str, tmp_path: Path
) -> None:
    assert runner.invoke(app, ["migrate"]).exit_code == 0
    made = runner.invoke(
        app, ["create-admin", "--email", "ops@example.com", "--password", "long enough pw"]
    )
    assert made.exit_code == 0, made.output
    result = runner.invoke(app, ["scim-token", "create", "--name", "Okta"])
    assert result.exit_code == 0, result.output
    secret = result.output.strip()
    assert secret.startswith("scim_")
    database = Database.from_url(database_url)
    with database.unit_of_work() as db:
        row = db.scalars(select(ScimToken)).one()
        assert (row.name, row.token_hash) == ("Okta", hash_token(secret))
    client = TestClient(create_app(make_settings(tmp_path, database_url), database))
    response = client.post(
        "/scim/v2/Users",
        json={"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "a@b.org"},
        headers={"Authorization": f"Bearer {secret}"},
    )
    assert response.status_code == 201, response.text
    database.dispose()


def test_a_token_without_a_name_is_refused_by_the_cli(database_url: str) -> None:
    assert runner.invoke(app, ["migrate"]).exit_code == 0
    runner.invoke(app, ["create-admin", "--email", "o@example.com", "--password", "long enough"])
    result = runner.invoke(app, ["scim-token", "create", "--name", "  "])
    assert result.exit_code != 0
    assert "name" in result.output


def test_only_a_settings_manager_makes_or_revokes_tokens(db: Session, org: Organization) -> None:
    agent = Actor(org.id, 1, None, "agent")
    with pytest.raises(PermissionDenied):
        tokens.create_token(db, actor=agent, name="Okta")
    with pytest.raises(InvalidInput):
        tokens.create_token(db, actor=system_actor(org.id), name="")
    made = tokens.create_token(db, actor=system_actor(org.id), name="Okta")
    with pytest.raises(PermissionDenied):
        tokens.revoke_token(db, actor=agent, token_id=made.token.id)
    tokens.revoke_token(db, actor=system_actor(org.id), token_id=made.token.id)
    with pytest.raises(tokens.NotAuthenticated):
        tokens.authenticate(db, secret=made.secret)
    assert [row.name for row in tokens.list_tokens(db, actor=system_actor(org.id))] == ["Okta"]
