"""Settings > Provisioning: the SCIM base URL, tokens made (shown once) and revoked there,
the provider's latest requests; scim.manage over the whole organization only."""

from __future__ import annotations

from fastapi.testclient import TestClient
from markupsafe import escape
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests import factories
from tests.scim.conftest import Scim, make_token
from userdesk.access.models import Role, RolePermission
from userdesk.audit.models import AuditEvent
from userdesk.organizations.models import Organization
from userdesk.scim import tokens
from userdesk.scim.models import ScimToken

PAGE = "/console/settings/provisioning"


def secret_in(page: str) -> str:
    return page.split('data-testid="token-secret" autocomplete', 1)[0].rsplit('value="', 1)[1][:-2]


def test_a_token_is_shown_once_and_works_at_the_base_url(
    client: TestClient, db: Session, org: Organization
) -> None:
    admin = factories.make_admin(db, org, first_name="Ann", last_name="Admin")
    csrf = factories.login(client, admin.email)
    page = client.get(PAGE)
    assert page.status_code == 200
    assert 'value="http://testserver/scim/v2"' in page.text
    assert 'data-testid="no-tokens"' in page.text
    made = client.post(f"{PAGE}/tokens", data={"name": "Okta", "csrf_token": csrf})
    assert made.status_code == 201
    assert made.headers["cache-control"] == "no-store"
    secret = secret_in(made.text)
    assert secret.startswith(tokens.TOKEN_PREFIX)
    assert 'data-copy-from="scim-token"' in made.text
    works = client.get("/scim/v2/Users", headers={"Authorization": f"Bearer {secret}"})
    assert works.status_code == 200
    again = client.get(PAGE)
    assert secret not in again.text
    assert secret[:10] in again.text  # the prefix names it
    assert "Ann Admin" in again.text  # created by
    audited = db.scalars(
        select(AuditEvent.action).where(
            AuditEvent.organization_id == org.id, AuditEvent.target_type == "scim_token"
        )
    ).all()
    assert list(audited) == ["scim_token.created"]


def test_a_token_needs_a_name_and_the_form_says_so(
    client: TestClient, db: Session, org: Organization
) -> None:
    csrf = factories.login(client, factories.make_admin(db, org).email)
    for name in ("", "   ", "x" * 101):
        refused = client.post(f"{PAGE}/tokens", data={"name": name, "csrf_token": csrf})
        assert refused.status_code == 400
        assert "Name is" in refused.text
    assert db.scalars(select(ScimToken).where(ScimToken.organization_id == org.id)).all() == []


def test_revoking_a_token_refuses_its_next_request(
    client: TestClient, db: Session, org: Organization
) -> None:
    csrf = factories.login(client, factories.make_admin(db, org).email)
    secret = make_token(db, org, "Entra")
    token = db.scalars(select(ScimToken).where(ScimToken.organization_id == org.id)).one()
    headers = {"Authorization": f"Bearer {secret}"}
    assert client.get("/scim/v2/Users", headers=headers).status_code == 200
    no_csrf = client.post(f"{PAGE}/tokens/{token.id}/revoke")
    assert no_csrf.status_code == 403
    assert client.get("/scim/v2/Users", headers=headers).status_code == 200
    done = client.post(f"{PAGE}/tokens/{token.id}/revoke", data={"csrf_token": csrf})
    assert done.status_code == 303
    assert done.headers["location"] == f"{PAGE}?revoked=1"
    assert client.get("/scim/v2/Users", headers=headers).status_code == 401
    page = client.get(done.headers["location"])
    assert "The token is revoked" in page.text
    assert "Revoked</span>" in page.text
    assert f"/tokens/{token.id}/revoke" not in page.text


def test_another_organizations_token_cannot_be_revoked(
    client: TestClient, db: Session, org: Organization
) -> None:
    csrf = factories.login(client, factories.make_admin(db, org).email)
    other = factories.make_organization(db)
    secret = make_token(db, other, "Theirs")
    theirs = db.scalars(select(ScimToken).where(ScimToken.organization_id == other.id)).one()
    refused = client.post(f"{PAGE}/tokens/{theirs.id}/revoke", data={"csrf_token": csrf})
    assert refused.status_code == 404
    assert (
        client.get("/scim/v2/Users", headers={"Authorization": f"Bearer {secret}"}).status_code
        == 200
    )
    for bad in ("abc", "-1", "99999999999999999999999", "1%00"):
        assert client.post(
            f"{PAGE}/tokens/{bad}/revoke", data={"csrf_token": csrf}
        ).status_code in (
            400,
            404,
            422,
        )


def test_only_scim_managers_over_the_organization_reach_it(
    client: TestClient, db: Session, org: Organization
) -> None:
    """Team Administrators, Agents, a custom role with settings.manage but not
    scim.manage, and one with scim.manage over a team only are all refused."""
    team = factories.make_team(db, org)
    settings_only = Role(organization_id=org.id, name="Settings", scope="organization")
    team_scim = Role(organization_id=org.id, name="Team SCIM", scope="team")
    db.add_all([settings_only, team_scim])
    db.flush()
    db.add(
        RolePermission(
            organization_id=org.id, role_id=settings_only.id, permission="settings.manage"
        )
    )
    db.add(RolePermission(organization_id=org.id, role_id=team_scim.id, permission="scim.manage"))
    db.add(RolePermission(organization_id=org.id, role_id=team_scim.id, permission="users.read"))
    db.flush()
    secret = make_token(db, org, "Okta")
    token_id = db.scalars(select(ScimToken.id).where(ScimToken.organization_id == org.id)).one()
    for role in ("Team Administrator", "Agent", "Settings", "Team SCIM"):
        person = factories.make_user(db, org, roles=(role,), team=team)
        client.cookies.clear()
        csrf = factories.login(client, person.email)
        assert client.get(PAGE).status_code == 403, role
        made = client.post(f"{PAGE}/tokens", data={"name": "Mine", "csrf_token": csrf})
        assert made.status_code == 403, role
        revoke = client.post(f"{PAGE}/tokens/{token_id}/revoke", data={"csrf_token": csrf})
        assert revoke.status_code == 403, role
        switched = client.post(
            f"{PAGE}/settings", data={"creates_teams": "true", "csrf_token": csrf}
        )
        assert switched.status_code == 403, role
        settings = client.get("/console/settings")
        assert 'data-testid="provisioning-link"' not in settings.text
    assert (
        client.get("/scim/v2/Users", headers={"Authorization": f"Bearer {secret}"}).status_code
        == 200
    )
    client.cookies.clear()
    client.get(PAGE, follow_redirects=False)
    assert client.get(PAGE, follow_redirects=False).status_code in (303, 401)
    factories.login(client, factories.make_admin(db, org).email)
    assert 'data-testid="provisioning-link"' in client.get("/console/settings").text


def test_the_log_rows_are_shown_with_outcomes_and_the_errors_filter(
    client: TestClient, db: Session, org: Organization
) -> None:
    scim = Scim(client, make_token(db, org, "Okta"))
    scim.create("ann@example.com")
    scim.get("/Users/424242")
    factories.login(client, factories.make_admin(db, org).email)
    page = client.get(PAGE)
    assert page.text.count('data-testid="request-row"') == 2
    assert "/scim/v2/Users/424242" in page.text
    assert "201 Created" in page.text
    assert "404 Not found" in page.text
    errors = client.get(f"{PAGE}?errors=1")
    assert errors.text.count('data-testid="request-row"') == 1
    assert "/scim/v2/Users/424242" in errors.text
    assert "201 Created" not in errors.text


def test_the_empty_state_says_what_to_do_next(
    client: TestClient, db: Session, org: Organization
) -> None:
    factories.login(client, factories.make_admin(db, org).email)
    empty = client.get(PAGE).text
    assert "No requests yet" in empty
    assert "Create a token above" in empty
    make_token(db, org, "Okta")
    with_token = client.get(PAGE).text
    assert "Give your identity provider the base URL" in with_token
    assert "<code>http://testserver/scim/v2</code>" in with_token


def test_another_organizations_requests_are_not_shown(
    client: TestClient, db: Session, org: Organization
) -> None:
    other = factories.make_organization(db)
    Scim(client, make_token(db, other, "Theirs")).get("/Users/777777")
    factories.login(client, factories.make_admin(db, org).email)
    page = client.get(PAGE).text
    assert "/Users/777777" not in page
    assert "Theirs" not in page
    assert 'data-testid="request-row"' not in page


def test_a_hostile_path_and_token_name_are_escaped(
    client: TestClient, db: Session, org: Organization
) -> None:
    scim = Scim(client, make_token(db, org, '<img src=x onerror="alert(1)">'))
    scim.client.get('/scim/v2/Users/<script>alert("x")</script>', headers=scim.headers())
    factories.login(client, factories.make_admin(db, org).email)
    page = client.get(PAGE).text
    assert "<script>alert" not in page
    assert "<img src=x" not in page
    assert str(escape('/scim/v2/Users/<script>alert("x")</script>')) in page
    assert str(escape('<img src=x onerror="alert(1)">')) in page


def test_a_form_without_its_csrf_token_makes_nothing_and_a_second_revoke_changes_nothing(
    client: TestClient, db: Session, org: Organization
) -> None:
    """A cross-site form makes no token; revoking twice (two tabs) answers both and is
    audited once."""
    csrf = factories.login(client, factories.make_admin(db, org).email)
    forged = client.post(f"{PAGE}/tokens", data={"name": "Evil"})
    assert forged.status_code == 403
    wrong = client.post(f"{PAGE}/tokens", data={"name": "Evil", "csrf_token": csrf + "x"})
    assert wrong.status_code == 403
    assert db.scalars(select(ScimToken).where(ScimToken.organization_id == org.id)).all() == []
    make_token(db, org, "Okta")
    token_id = db.scalars(select(ScimToken.id).where(ScimToken.organization_id == org.id)).one()
    for _ in range(2):
        done = client.post(f"{PAGE}/tokens/{token_id}/revoke", data={"csrf_token": csrf})
        assert done.status_code == 303
    revocations = db.scalars(
        select(AuditEvent.id).where(
            AuditEvent.organization_id == org.id, AuditEvent.action == "scim_token.revoked"
        )
    ).all()
    assert len(revocations) == 1
