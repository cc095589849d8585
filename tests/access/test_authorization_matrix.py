"""Every API operation, for every built-in role and a custom one, on a target in the
actor's team and outside it: allowed exactly when the matrix says so."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests import factories
from tests.access.authorization_matrix import (
    CUSTOM_ROLE,
    OTHER_TEAM,
    OWN_TEAM,
    ROLES,
    C,
    D,
    R,
    U,
    allowed,
)
from userdesk.access.models import Role, RolePermission, Team
from userdesk.access.rules import system_actor
from userdesk.organizations.models import Organization
from userdesk.outreach import service as outreach
from userdesk.users.models import User

_serial = itertools.count()


@dataclass
class World:
    db: Session
    org: Organization
    client: TestClient
    admin_key: str
    team: Team
    other_team: Team

    def user(self, scope: str, status: str = "active", **kwargs: Any) -> User:
        team = self.team if scope == OWN_TEAM else self.other_team
        return factories.make_user(self.db, self.org, team=team, status=status, **kwargs)

    def etag(self, user: User) -> str:
        response = self.client.get(
            f"/api/v1/users/{user.id}", headers={"Authorization": f"Bearer {self.admin_key}"}
        )
        return response.headers["etag"]

    def invitation(self, scope: str) -> str:
        team = self.team if scope == OWN_TEAM else self.other_team
        made = self.client.post(
            "/api/v1/invitations",
            json={
                "people": [{"email": f"inv{next(_serial)}@example.com"}],
                "team_id": str(team.id),
            },
            headers={"Authorization": f"Bearer {self.admin_key}"},
        )
        return made.json()["created"][0]["id"]


# name, permission, targeted, request(world, scope) -> (method, path, json, headers)
Request = tuple[str, str, Any, dict[str, str]]


@dataclass(frozen=True)
class Operation:
    name: str
    permission: str
    targeted: bool
    request: Callable[[World, str], Request]


def _action(
    action: str, status: str = "active", body: Any = None, permission: str = "users.moderate"
) -> Operation:
    def make(w: World, scope: str) -> Request:
        return ("POST", f"/api/v1/users/{w.user(scope, status).id}/{action}", body, {})

    return Operation(f"user {action}", permission, True, make)


def _validated(w: World, scope: str) -> Request:
    user = w.user(scope)
    user.validated_at = user.created_at
    w.db.flush()
    return ("POST", f"/api/v1/users/{user.id}/invalidate", None, {})


def _unverified(w: World, scope: str) -> Request:
    user = w.user(scope)
    user.email_verified_at = None
    w.db.flush()
    return ("POST", f"/api/v1/users/{user.id}/verification-email", None, {})


def _patch(w: World, scope: str) -> Request:
    user = w.user(scope)
    return (
        "PATCH",
        f"/api/v1/users/{user.id}",
        {"first_name": "Renamed"},
        {"If-Match": w.etag(user)},
    )


def _delete(w: World, scope: str) -> Request:
    user = w.user(scope)
    return ("DELETE", f"/api/v1/users/{user.id}", {"confirm_email": user.email}, {})


def _invited(w: World, scope: str) -> Request:
    team = w.team if scope == OWN_TEAM else w.other_team
    made = w.client.post(
        "/api/v1/invitations",
        json={"people": [{"email": f"inv{next(_serial)}@example.com"}], "team_id": str(team.id)},
        headers={"Authorization": f"Bearer {w.admin_key}"},
    )
    user_id = made.json()["created"][0]["user_id"]
    return ("POST", f"/api/v1/users/{user_id}/invitation/resend", None, {})


def _to_group(w: World, scope: str) -> Request:
    group = factories.make_group(w.db, w.org)
    return ("POST", f"/api/v1/users/{w.user(scope).id}/groups", {"group_id": str(group.id)}, {})


def _outreach(w: World, scope: str) -> tuple[User, User, int]:
    """A user of SCOPE with an open outreach by an agent of the same scope."""
    user, agent = w.user(scope), w.user(scope, roles=("Agent",))
    row = outreach.assign(
        w.db,
        actor=system_actor(w.org.id, "tests"),
        user_id=user.id,
        agent_id=str(agent.id),
        note="",
        base_url="http://testserver",
    )
    return user, agent, row.id


def _assign(w: World, scope: str) -> Request:
    user, agent = w.user(scope), w.user(scope, roles=("Agent",))
    return ("POST", f"/api/v1/users/{user.id}/outreach", {"agent_id": str(agent.id)}, {})


def _reassign(w: World, scope: str) -> Request:
    user, _, row_id = _outreach(w, scope)
    other = w.user(scope, roles=("Agent",))
    path = f"/api/v1/users/{user.id}/outreach/{row_id}/reassign"
    return ("POST", path, {"agent_id": str(other.id)}, {})


def _outreach_done(w: World, scope: str) -> Request:
    user, _, row_id = _outreach(w, scope)
    return ("POST", f"/api/v1/users/{user.id}/outreach/{row_id}/done", None, {})


OPERATIONS = [
    Operation("list users", R, False, lambda w, s: ("GET", "/api/v1/users", None, {})),
    Operation("count users", R, False, lambda w, s: ("GET", "/api/v1/users/counts", None, {})),
    Operation(
        "read a user", R, True, lambda w, s: ("GET", f"/api/v1/users/{w.user(s).id}", None, {})
    ),
    Operation(
        "add a user",
        C,
        False,
        lambda w, s: (
            "POST",
            "/api/v1/users",
            {"email": f"new{id(w)}{w.user(s).id}@example.com"},
            {},
        ),
    ),
    Operation("edit a user", U, True, _patch),
    Operation("verification email", U, True, _unverified),
    _action("validate"),
    Operation("user invalidate", "users.moderate", True, lambda w, s: _validated(w, s)),
    _action("disable", body={"reason": "r"}),
    _action("enable", status="disabled"),
    _action("ban", body={"reason": "r", "days": 1}),
    _action("unban", status="banned"),
    _action("revoke-sessions"),
    _action("trash", permission=D),
    _action("restore", status="trashed", permission=D),
    _action("reactivate", status="deleted", permission=C),
    _action("activate", status="pending", permission="users.activate"),
    Operation("delete a user", D, True, _delete),
    Operation(
        "a user's churn risk",
        "users.activity",
        True,
        lambda w, s: ("GET", f"/api/v1/users/{w.user(s).id}/churn", None, {}),
    ),
    Operation(
        "re-engagement email",
        U,
        True,
        lambda w, s: ("POST", f"/api/v1/users/{w.user(s).id}/re-engagement-email", None, {}),
    ),
    Operation("resend a user's invitation", C, True, _invited),
    Operation("add to a group", U, True, _to_group),
    Operation(
        "a user's outreach",
        R,
        True,
        lambda w, s: ("GET", f"/api/v1/users/{w.user(s).id}/outreach", None, {}),
    ),
    Operation(
        "agents for an outreach",
        U,
        True,
        lambda w, s: ("GET", f"/api/v1/users/{w.user(s).id}/outreach/agents", None, {}),
    ),
    Operation("assign an outreach", U, True, _assign),
    Operation("reassign an outreach", U, True, _reassign),
    Operation("mark an outreach done", U, True, _outreach_done),
    Operation(
        "score churn",
        "settings.manage",
        False,
        lambda w, s: ("POST", "/api/v1/churn/runs", {}, {}),
    ),
    Operation("read the dashboard", R, False, lambda w, s: ("GET", "/api/v1/dashboard", None, {})),
    Operation("business hours", R, False, lambda w, s: ("GET", "/api/v1/business-hours", None, {})),
    Operation(
        "set business hours",
        "settings.manage",
        False,
        lambda w, s: ("PUT", "/api/v1/business-hours", {"time_zone": "UTC", "weekly": {}}, {}),
    ),
    Operation(
        "set an agent's hours",
        U,
        True,
        lambda w, s: (
            "PUT",
            f"/api/v1/users/{w.user(s, roles=('Agent',)).id}/business-hours",
            {"time_zone": "UTC", "weekly": {"mon": [["08:00", "12:00"]]}},
            {},
        ),
    ),
    Operation(
        "bulk preview",
        "users.moderate",
        False,
        lambda w, s: ("POST", "/api/v1/users/bulk/preview", {"action": "disable", "q": ""}, {}),
    ),
    Operation(
        "invite",
        C,
        False,
        lambda w, s: (
            "POST",
            "/api/v1/invitations",
            {"people": [{"email": f"i{id(w)}{w.user(s).id}@example.com"}]},
            {},
        ),
    ),
    Operation("list invitations", R, False, lambda w, s: ("GET", "/api/v1/invitations", None, {})),
    Operation(
        "resend an invitation",
        C,
        True,
        lambda w, s: ("POST", f"/api/v1/invitations/{w.invitation(s)}/resend", None, {}),
    ),
    Operation(
        "revoke an invitation",
        C,
        True,
        lambda w, s: ("POST", f"/api/v1/invitations/{w.invitation(s)}/revoke", None, {}),
    ),
    Operation("list segments", R, False, lambda w, s: ("GET", "/api/v1/segments", None, {})),
    Operation(
        "share a segment",
        "settings.manage",
        False,
        lambda w, s: (
            "POST",
            "/api/v1/segments",
            {"name": f"s{id(w)}{w.user(s).id}", "query": "", "shared": True},
            {},
        ),
    ),
    Operation(
        "export users",
        "users.export",
        False,
        lambda w, s: ("GET", "/api/v1/users/export", None, {}),
    ),
    Operation(
        "read the audit log", "audit.read", False, lambda w, s: ("GET", "/api/v1/audit", None, {})
    ),
    Operation("list roles", R, False, lambda w, s: ("GET", "/api/v1/roles", None, {})),
    Operation(
        "make a role",
        "settings.manage",
        False,
        lambda w, s: (
            "POST",
            "/api/v1/roles",
            {"name": f"r{id(w)}{w.user(s).id}", "permissions": ["users.read"]},
            {},
        ),
    ),
    Operation("list teams", R, False, lambda w, s: ("GET", "/api/v1/teams", None, {})),
    Operation(
        "make a team",
        "settings.manage",
        False,
        lambda w, s: ("POST", "/api/v1/teams", {"name": f"t{id(w)}{w.user(s).id}"}, {}),
    ),
    Operation("list groups", R, False, lambda w, s: ("GET", "/api/v1/groups", None, {})),
    Operation(
        "make a group",
        "settings.manage",
        False,
        lambda w, s: ("POST", "/api/v1/groups", {"name": f"g{id(w)}{w.user(s).id}"}, {}),
    ),
]


@pytest.fixture
def world(client: TestClient, db: Session, org: Organization) -> World:
    name, permissions = CUSTOM_ROLE
    custom = Role(organization_id=org.id, name=name, scope="organization", builtin=False)
    custom.permission_rows = [
        RolePermission(organization_id=org.id, permission=p) for p in permissions
    ]
    db.add(custom)
    db.flush()
    factories.make_admin(db, org)  # never the last Administrator
    return World(
        db,
        org,
        client,
        factories.make_api_key(db, org),
        factories.make_team(db, org, "Mine"),
        factories.make_team(db, org, "Theirs"),
    )


def test_the_matrix_covers_every_operation_of_the_api(client: TestClient) -> None:
    spec = client.get("/api/v1/openapi.json").json()
    operations = {(method.upper(), path) for path, item in spec["paths"].items() for method in item}
    # Operations this matrix does not reach need a reason to be left out.
    left_out = {
        ("GET", "/api/v1/segments/{segment_id}"),
        ("PATCH", "/api/v1/segments/{segment_id}"),
        ("DELETE", "/api/v1/segments/{segment_id}"),  # private to their owner: tested apart
        ("POST", "/api/v1/imports"),  # multipart: its permission is tested in test_import
        ("POST", "/api/v1/users/bulk"),
        # A signed-in person's act (API keys are refused): tested in test_impersonation.
        ("POST", "/api/v1/users/{user_id}/impersonations"),
        ("GET", "/api/v1/jobs/{job_id}"),  # tested in test_bulk
        # One's own account: a browser session's, no permission needed, API keys refused
        # (tested in tests/web/test_my_account.py).
        ("GET", "/api/v1/me"),
        ("PATCH", "/api/v1/me"),
        ("GET", "/api/v1/me/sessions"),
        ("DELETE", "/api/v1/me/sessions/{session_id}"),
        ("PATCH", "/api/v1/roles/{role_id}"),
        ("DELETE", "/api/v1/roles/{role_id}"),
        ("PATCH", "/api/v1/teams/{item_id}"),
        ("DELETE", "/api/v1/teams/{item_id}"),
        ("PATCH", "/api/v1/groups/{item_id}"),
        ("DELETE", "/api/v1/groups/{item_id}"),
    }
    covered = {
        "/api/v1/users",
        "/api/v1/users/counts",
        "/api/v1/users/{user_id}",
        "/api/v1/users/{user_id}/{action}",
        "/api/v1/users/{user_id}/verification-email",
        "/api/v1/users/{user_id}/churn",
        "/api/v1/users/{user_id}/re-engagement-email",
        "/api/v1/users/{user_id}/invitation/resend",
        "/api/v1/users/{user_id}/groups",
        "/api/v1/users/{user_id}/outreach",
        "/api/v1/users/{user_id}/outreach/agents",
        "/api/v1/users/{user_id}/outreach/{assignment_id}/reassign",
        "/api/v1/users/{user_id}/outreach/{assignment_id}/done",
        "/api/v1/churn/runs",
        "/api/v1/dashboard",
        "/api/v1/business-hours",
        "/api/v1/users/{user_id}/business-hours",
        "/api/v1/users/bulk/preview",
        "/api/v1/users/export",
        "/api/v1/users/{user_id}/activity",
        "/api/v1/audit",
        "/api/v1/events",
        "/api/v1/invitations",
        "/api/v1/invitations/{invitation_id}/resend",
        "/api/v1/invitations/{invitation_id}/revoke",
        "/api/v1/segments",
        "/api/v1/roles",
        "/api/v1/teams",
        "/api/v1/groups",
    }
    assert {op for op in operations if op[1] not in covered} <= left_out


@pytest.mark.parametrize("role", list(ROLES))
def test_each_role_is_allowed_exactly_what_the_matrix_says(world: World, role: str) -> None:
    key = factories.make_api_key(
        world.db, world.org, role, team=world.team if ROLES[role][1] == "team" else None
    )
    surprises = []
    for operation in OPERATIONS:
        scopes = [OWN_TEAM, OTHER_TEAM] if operation.targeted else [OWN_TEAM]
        for scope in scopes:
            method, path, body, headers = operation.request(world, scope)
            response = world.client.request(
                method, path, json=body, headers={"Authorization": f"Bearer {key}", **headers}
            )
            expected = allowed(role, operation.permission, scope if operation.targeted else None)
            got = response.status_code < 400
            if response.status_code >= 400 and response.status_code not in (403, 404):
                surprises.append(
                    f"{operation.name} ({scope}): {response.status_code} {response.text}"
                )
            elif got != expected:
                surprises.append(
                    f"{operation.name} ({scope}): {'allowed' if got else 'denied'}, "
                    f"expected {'allowed' if expected else 'denied'} ({response.status_code})"
                )
    assert not surprises, "\n".join(surprises)
