"""The `scim_creates_teams` setting: a switch on Settings > Provisioning and
`userdesk scim-settings`, for who manages SCIM over the whole organization, audited; and
what it does to a department that names no team."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from tests import factories
from tests.scim.conftest import Scim
from userdesk.access.models import Role, RolePermission, Team
from userdesk.audit.models import AuditEvent
from userdesk.cli import app
from userdesk.config import get_settings
from userdesk.db.session import Database
from userdesk.organizations.models import Organization
from userdesk.scim import settings as scim_settings

PAGE = "/console/settings/provisioning"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
runner = CliRunner()


def _changes(db: Session, org: Organization) -> list[AuditEvent]:
    return list(
        db.scalars(
            select(AuditEvent)
            .where(
                AuditEvent.organization_id == org.id,
                AuditEvent.action == "organization.settings_changed",
            )
            .order_by(AuditEvent.id)
        )
    )


def test_an_admin_turns_it_on_and_off_on_the_page_and_provisioning_follows(
    client: TestClient, db: Session, org: Organization, scim: Scim
) -> None:
    admin = factories.make_admin(db, org, first_name="Ann", last_name="Admin")
    csrf = factories.login(client, admin.email)
    page = client.get(PAGE)
    assert 'data-testid="creates-teams"' in page.text
    assert 'data-testid="creates-teams" checked' not in page.text
    saved = client.post(
        f"{PAGE}/settings",
        data={"creates_teams": "true", "csrf_token": csrf},
        follow_redirects=False,
    )
    assert saved.status_code == 303
    assert saved.headers["location"] == f"{PAGE}?saved=1#teams"
    shown = client.get(saved.headers["location"])
    assert 'data-testid="settings-saved"' in shown.text
    assert "checked" in shown.text.split('data-testid="creates-teams"')[0].rsplit("<input", 1)[1]
    db.expire_all()
    assert scim_settings.creates_teams(db, org.id) is True
    [event] = _changes(db, org)
    assert event.actor_name == "Ann Admin"
    assert event.changes == {scim_settings.CREATES_TEAMS: {"from": False, "to": True}}
    scim.create("r@example.com", **{ENTERPRISE: {"department": "Research"}})
    assert db.scalar(select(Team).where(Team.organization_id == org.id, Team.name == "Research"))
    # an unchecked box is not sent: off
    client.post(f"{PAGE}/settings", data={"csrf_token": csrf})
    db.expire_all()
    assert scim_settings.creates_teams(db, org.id) is False
    assert len(_changes(db, org)) == 2
    scim.create("s@example.com", **{ENTERPRISE: {"department": "Sales"}})
    assert not db.scalar(select(Team).where(Team.organization_id == org.id, Team.name == "Sales"))


def test_only_scim_managers_over_the_organization_change_it(
    client: TestClient, db: Session, org: Organization
) -> None:
    team = factories.make_team(db, org)
    settings_only = Role(organization_id=org.id, name="Settings", scope="organization")
    db.add(settings_only)
    db.flush()
    db.add(
        RolePermission(
            organization_id=org.id, role_id=settings_only.id, permission="settings.manage"
        )
    )
    db.flush()
    for role in ("Team Administrator", "Agent", "Settings"):
        person = factories.make_user(db, org, roles=(role,), team=team)
        client.cookies.clear()
        csrf = factories.login(client, person.email)
        refused = client.post(
            f"{PAGE}/settings", data={"creates_teams": "true", "csrf_token": csrf}
        )
        assert refused.status_code == 403, role
    # without its CSRF token, an admin's form changes nothing
    client.cookies.clear()
    factories.login(client, factories.make_admin(db, org).email)
    client.post(f"{PAGE}/settings", data={"creates_teams": "true"})
    db.expire_all()
    assert scim_settings.creates_teams(db, org.id) is False
    assert _changes(db, org) == []


@pytest.fixture
def database_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = f"sqlite:///{tmp_path}/cli.db"
    monkeypatch.setenv("USERDESK_DATABASE_URL", url)
    monkeypatch.setenv("USERDESK_VAR_DIR", str(tmp_path))
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


def test_the_cli_shows_and_changes_it_audited(database_url: str) -> None:
    assert runner.invoke(app, ["migrate"]).exit_code == 0
    made = runner.invoke(
        app, ["create-admin", "--email", "ops@example.com", "--password", "long enough pw"]
    )
    assert made.exit_code == 0, made.output
    shown = runner.invoke(app, ["scim-settings"])
    assert shown.exit_code == 0, shown.output
    assert shown.output.strip() == "creates teams: off"
    on = runner.invoke(app, ["scim-settings", "--creates-teams"])
    assert (on.exit_code, on.output.strip()) == (0, "creates teams: on")
    database = Database.from_url(database_url)
    with database.unit_of_work() as db:
        [event] = db.scalars(
            select(AuditEvent).where(AuditEvent.action == "organization.settings_changed")
        ).all()
        assert event.actor_name == "userdesk scim-settings"
        assert event.changes == {scim_settings.CREATES_TEAMS: {"from": False, "to": True}}
    off = runner.invoke(app, ["scim-settings", "--no-creates-teams"])
    assert (off.exit_code, off.output.strip()) == (0, "creates teams: off")
    database.dispose()
