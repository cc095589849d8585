import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests import factories
from userdesk.access.models import Group, Role, Team
from userdesk.access.rules import ALL_PERMISSIONS, Permission
from userdesk.auth import password_imports
from userdesk.organizations.models import Organization
from userdesk.users.models import User


def test_teams_and_groups_are_added_renamed_and_deleted_in_settings(
    client: TestClient, db: Session, org: Organization
) -> None:
    admin = factories.make_admin(db, org)
    csrf = factories.login(client, admin.email)
    assert (
        client.post("/console/settings/teams", data={"name": "Ops", "csrf_token": csrf}).status_code
        == 303
    )
    team = db.scalars(select(Team).where(Team.organization_id == org.id, Team.name == "Ops")).one()
    member = factories.make_user(db, org, team=team)
    taken = client.post("/console/settings/teams", data={"name": "ops", "csrf_token": csrf})
    assert taken.status_code == 400
    assert "&#39;ops&#39; is taken" in taken.text
    client.post(
        f"/console/settings/teams/{team.id}", data={"name": "Operations", "csrf_token": csrf}
    )
    db.refresh(team)
    assert team.name == "Operations"
    team_id = team.id
    client.post(f"/console/settings/teams/{team_id}/delete", data={"csrf_token": csrf})
    db.expire_all()
    assert db.scalar(select(Team.id).where(Team.id == team_id)) is None
    assert db.get(User, member.id).team_id is None  # type: ignore[union-attr]
    client.post("/console/settings/groups", data={"name": "VIP", "csrf_token": csrf})
    assert db.scalars(select(Group).where(Group.organization_id == org.id)).one().name == "VIP"


def test_a_custom_role_is_made_and_edited_and_built_ins_stay(
    client: TestClient, db: Session, org: Organization
) -> None:
    admin = factories.make_admin(db, org)
    csrf = factories.login(client, admin.email)
    made = client.post(
        "/console/roles",
        data={
            "name": "Auditor",
            "scope": "organization",
            "permissions": ["users.read", "audit.read"],
            "csrf_token": csrf,
        },
    )
    assert made.status_code == 303
    role = db.scalars(
        select(Role).where(Role.organization_id == org.id, Role.name == "Auditor")
    ).one()
    assert role.permissions == ["audit.read", "users.read"]
    client.post(
        "/console/roles",
        data={
            "role_id": str(role.id),
            "name": "Auditor",
            "scope": "organization",
            "permissions": ["users.read"],
            "csrf_token": csrf,
        },
    )
    db.refresh(role)
    assert role.permissions == ["users.read"]
    builtin = factories.role(db, org, "Agent")
    refused = client.post(f"/console/settings/roles/{builtin.id}/delete", data={"csrf_token": csrf})
    assert refused.status_code == 409
    assert db.get(Role, builtin.id) is not None


def test_a_role_change_takes_effect_on_the_next_request(
    client: TestClient, db: Session, org: Organization
) -> None:
    key = factories.make_api_key(db, org)
    custom = client.post(
        "/api/v1/roles",
        json={"name": "Reader", "permissions": ["users.read"]},
        headers={"Authorization": f"Bearer {key}"},
    ).json()
    reader = factories.make_user(db, org, roles=("Reader",))
    factories.login(client, reader.email)
    assert client.get("/console/users").status_code == 200
    client.patch(
        f"/api/v1/roles/{custom['id']}",
        json={"permissions": []},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert client.get("/console/users").status_code == 403


def test_the_bulk_bar_offers_only_what_the_admin_may_do(
    client: TestClient, db: Session, org: Organization
) -> None:
    team = factories.make_team(db, org)
    key = factories.make_api_key(db, org)
    client.post(
        "/api/v1/roles",
        json={"name": "Mod", "permissions": ["users.read", "users.moderate"]},
        headers={"Authorization": f"Bearer {key}"},
    )
    mod = factories.make_user(db, org, roles=("Mod",), team=team)
    factories.make_user(db, org)
    factories.login(client, mod.email)
    bar = (
        client.get("/console/users")
        .text.split('data-testid="bulk-bar"', 1)[1]
        .split("</div>", 1)[0]
    )
    assert 'value="disable"' in bar
    assert 'value="trash"' not in bar
    assert 'value="resend-invitation"' not in bar


@pytest.mark.parametrize("role_name", ["Team Administrator", "Agent", "Member", "Helpdesk"])
def test_password_imports_answer_403_to_each_role_without_settings_manage(
    client: TestClient, db: Session, org: Organization, role_name: str
) -> None:
    """Settings > Password imports is settings.manage's: every built-in role without it,
    and a custom role holding every other permission, is refused reading and saving."""
    if role_name == "Helpdesk":
        key = factories.make_api_key(db, org)
        everything_else = sorted(ALL_PERMISSIONS - {Permission.SETTINGS_MANAGE})
        made = client.post(
            "/api/v1/roles",
            json={"name": "Helpdesk", "permissions": everything_else},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert made.status_code == 201, made.text
    team = factories.make_team(db, org)
    person = factories.make_user(db, org, roles=(role_name,), team=team)
    csrf = factories.login(client, person.email)
    assert client.get("/console/settings/password-imports").status_code == 403
    saved = client.post(
        "/console/settings/password-imports",
        data={"csrf_token": csrf, "allow_salted_sha": "true"},
    )
    assert saved.status_code == 403
    db.refresh(org)
    assert not password_imports.allows_salted_sha(org)
