"""The enterprise extension's department ↔ the user's team, and externalId changes told to
webhooks like any other change of a user."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests import factories
from tests.scim.conftest import USER_SCHEMA, Scim, patch_body
from tests.webhooks.test_events import body as message_body
from tests.webhooks.test_events import make_endpoint, sent
from userdesk.access.models import Team
from userdesk.access.rules import system_actor
from userdesk.audit.models import AuditEvent
from userdesk.config import Settings
from userdesk.errors import PermissionDenied
from userdesk.organizations.models import Organization
from userdesk.scim import settings as scim_settings
from userdesk.users.models import User

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


def _create(scim: Scim, email: str, department: str | None = None, **more: Any) -> Any:
    extra: dict[str, Any] = {}
    if department is not None:
        extra = {"schemas": [USER_SCHEMA, ENTERPRISE], ENTERPRISE: {"department": department}}
    return scim.create(email, **extra, **more)


def _team_of(db: Session, user_id: str) -> str | None:
    user = db.get_one(User, int(user_id))
    db.refresh(user)
    team = db.get(Team, user.team_id) if user.team_id else None
    return team.name if team else None


def _audit(db: Session, org: Organization, action: str) -> list[AuditEvent]:
    return list(
        db.scalars(
            select(AuditEvent)
            .where(AuditEvent.organization_id == org.id, AuditEvent.action == action)
            .order_by(AuditEvent.id)
        )
    )


def test_a_department_that_names_a_team_puts_the_user_in_it(
    scim: Scim, db: Session, org: Organization
) -> None:
    factories.make_team(db, org, "Sales")
    factories.make_team(db, factories.make_organization(db), "Support")
    made = _create(scim, "ann@example.com", "Sales")
    assert _team_of(db, made["id"]) == "Sales"
    assert made[ENTERPRISE] == {"department": "Sales"}
    assert ENTERPRISE in made["schemas"]
    assert scim.get(f"/Users/{made['id']}").json()[ENTERPRISE]["department"] == "Sales"
    # a team of another organization is no team here
    other = _create(scim, "bob@example.com", "Support")
    assert _team_of(db, other["id"]) is None
    assert ENTERPRISE not in scim.get(f"/Users/{other['id']}").json()


def test_a_department_matches_a_team_in_any_case_an_exact_name_first(
    scim: Scim, db: Session, org: Organization
) -> None:
    factories.make_team(db, org, "sales")
    factories.make_team(db, org, "Sales")
    assert _team_of(db, _create(scim, "a@example.com", "SALES")["id"]) == "sales"
    assert _team_of(db, _create(scim, "b@example.com", "Sales")["id"]) == "Sales"
    assert _team_of(db, _create(scim, "c@example.com", "  Sales ")["id"]) == "Sales"


def test_an_unknown_department_provisions_the_user_without_a_team_and_says_so(
    scim: Scim, db: Session, org: Organization
) -> None:
    """Setting off (the default): the request succeeds (a provider would retry a failure
    forever), no team is made, and the audit tells why the user has none."""
    made = _create(scim, "ann@example.com", "Research")
    assert _team_of(db, made["id"]) is None
    assert db.scalar(select(Team).where(Team.organization_id == org.id)) is None
    [event] = _audit(db, org, "user.scim_department_unmatched")
    assert event.target_id == made["id"]
    assert event.changes["department"] == "Research"
    assert event.actor_name  # the token's name


def test_with_the_setting_on_a_missing_team_is_made_once(
    scim: Scim, db: Session, org: Organization
) -> None:
    scim_settings.set_creates_teams(db, actor=system_actor(org.id, "tests"), value=True)
    first = _create(scim, "ann@example.com", "Research")
    second = _create(scim, "bob@example.com", "research")
    assert _team_of(db, first["id"]) == _team_of(db, second["id"]) == "Research"
    teams = db.scalars(select(Team).where(Team.organization_id == org.id)).all()
    assert [team.name for team in teams] == ["Research"]
    assert len(_audit(db, org, "team.created")) == 1
    assert not _audit(db, org, "user.scim_department_unmatched")
    # a name no team may have (too long): the user is still provisioned, without a team
    long = _create(scim, "cy@example.com", "R" * 300)
    assert _team_of(db, long["id"]) is None
    assert len(_audit(db, org, "user.scim_department_unmatched")) == 1


def test_the_setting_is_off_by_default_audited_and_for_settings_managers_only(
    db: Session, org: Organization
) -> None:
    assert scim_settings.creates_teams(db, org.id) is False
    scim_settings.set_creates_teams(db, actor=system_actor(org.id, "tests"), value=True)
    scim_settings.set_creates_teams(db, actor=system_actor(org.id, "tests"), value=True)
    assert scim_settings.creates_teams(db, org.id) is True
    [event] = _audit(db, org, "organization.settings_changed")
    assert event.changes == {scim_settings.CREATES_TEAMS: {"from": False, "to": True}}
    member = factories.make_user(db, org, email="m@example.com")
    from userdesk.access import service as access

    with pytest.raises(PermissionDenied):
        scim_settings.set_creates_teams(db, actor=access.actor_for_user(db, member), value=False)
    assert scim_settings.creates_teams(db, org.id) is True


def test_a_new_department_moves_the_user_and_a_removed_one_keeps_the_team(
    scim: Scim, db: Session, org: Organization
) -> None:
    factories.make_team(db, org, "Sales")
    factories.make_team(db, org, "Support")
    made = _create(scim, "ann@example.com", "Sales")
    path = f"/Users/{made['id']}"
    # Entra ID's shape: the attribute's full path
    moved = scim.send(
        "PATCH",
        path,
        patch_body({"op": "Replace", "path": f"{ENTERPRISE}:department", "value": "Support"}),
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()[ENTERPRISE]["department"] == "Support"
    assert _team_of(db, made["id"]) == "Support"
    [*_, updated] = _audit(db, org, "user.updated")
    assert updated.changes["team"] == {"from": "Sales", "to": "Support"}
    # removed: the team stays (an admin's choice of team is not undone by silence)
    removed = scim.send(
        "PATCH", path, patch_body({"op": "remove", "path": f"{ENTERPRISE}:department"})
    )
    assert removed.status_code == 200, removed.text
    assert _team_of(db, made["id"]) == "Support"
    # PUT without the extension: the team stays too
    put = scim.send("PUT", path, {"schemas": [USER_SCHEMA], "userName": "ann@example.com"})
    assert put.status_code == 200, put.text
    assert _team_of(db, made["id"]) == "Support"


def test_a_move_to_an_unknown_department_leaves_the_team_once(
    scim: Scim, db: Session, org: Organization
) -> None:
    factories.make_team(db, org, "Sales")
    made = _create(scim, "ann@example.com", "Sales")
    body = {
        "schemas": [USER_SCHEMA, ENTERPRISE],
        "userName": "ann@example.com",
        ENTERPRISE: {"department": "Nowhere"},
    }
    for _ in range(3):  # a provider sends the same PUT each sync
        response = scim.send("PUT", f"/Users/{made['id']}", body)
        assert response.status_code == 200, response.text
    assert _team_of(db, made["id"]) is None
    assert ENTERPRISE not in scim.get(f"/Users/{made['id']}").json()
    assert len(_audit(db, org, "user.scim_department_unmatched")) == 1


def test_department_is_filterable(scim: Scim, db: Session, org: Organization) -> None:
    factories.make_team(db, org, "Sales")
    factories.make_team(db, org, "Support")
    sales = {_create(scim, f"s{n}@example.com", "Sales")["id"] for n in range(3)}
    support = {_create(scim, "t@example.com", "Support")["id"]}
    nobody = {_create(scim, "n@example.com")["id"]}

    def found(expression: str) -> set[str]:
        response = scim.get("/Users", filter=expression)
        assert response.status_code == 200, response.text
        return {item["id"] for item in response.json().get("Resources", [])}

    assert found(f'{ENTERPRISE}:department eq "sales"') == sales
    assert found(f'{ENTERPRISE}:department sw "S"') == sales | support
    assert found(f'{ENTERPRISE}:department ne "Sales"') == support | nobody
    assert found(f"{ENTERPRISE}:department pr") == sales | support
    assert found(f"not ({ENTERPRISE}:department pr)") == nobody
    assert found(f'{ENTERPRISE}:department eq "Research"') == set()


def test_an_external_id_change_is_a_user_updated_webhook(
    scim: Scim, db: Session, org: Organization, settings: Settings
) -> None:
    """Through users.service: audited once, with the change, and told to webhooks."""
    endpoint = make_endpoint(db, settings, org, types=["user.updated"])
    made = scim.create("ann@example.com", externalId="okta-1")
    before = len(sent(db, endpoint))
    response = scim.send(
        "PATCH",
        f"/Users/{made['id']}",
        patch_body({"op": "replace", "path": "externalId", "value": "okta-2"}),
    )
    assert response.status_code == 200, response.text
    assert response.json()["externalId"] == "okta-2"
    messages = sent(db, endpoint)[before:]
    assert [m.event_type for m in messages] == ["user.updated"]
    told = message_body(messages[0])
    assert "okta-2" in str(told), told
    assert "okta-1" in str(told), told
    [*_, event] = _audit(db, org, "user.updated")
    assert event.changes == {"external_id": {"from": "okta-1", "to": "okta-2"}}
    # the same externalId again: nothing changed, nothing told
    again = scim.send(
        "PATCH",
        f"/Users/{made['id']}",
        patch_body({"op": "replace", "path": "externalId", "value": "okta-2"}),
    )
    assert again.status_code == 200
    assert sent(db, endpoint)[before:] == messages
