"""Factories: the smallest calls that make valid rows, with defaults a test can override."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence
from datetime import datetime

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from userdesk.access.models import Group, Role, Team
from userdesk.access.rules import system_actor
from userdesk.auth import service as auth
from userdesk.auth.secrets import hash_password
from userdesk.db.base import utcnow
from userdesk.organizations import service as organizations
from userdesk.organizations.models import Organization
from userdesk.users.models import User, UserGroup, UserRole

_counter = itertools.count(1)
PASSWORD = "correct horse battery"


@functools.cache
def password_hash(password: str) -> str:
    """Argon2 is slow on purpose: hash each test password once per run."""
    return hash_password(password)


def make_organization(db: Session, slug: str | None = None) -> Organization:
    n = next(_counter)
    return organizations.create_organization(db, slug=slug or f"org-{n}", name=f"Organization {n}")


def role(db: Session, org: Organization, name: str) -> Role:
    found = db.scalar(select(Role).where(Role.organization_id == org.id, Role.name == name))
    assert found is not None, name
    return found


def make_team(db: Session, org: Organization, name: str | None = None) -> Team:
    team = Team(organization_id=org.id, name=name or f"Team {next(_counter)}")
    db.add(team)
    db.flush()
    return team


def make_group(db: Session, org: Organization, name: str | None = None) -> Group:
    group = Group(organization_id=org.id, name=name or f"Group {next(_counter)}")
    db.add(group)
    db.flush()
    return group


def make_user(
    db: Session,
    org: Organization,
    *,
    email: str | None = None,
    first_name: str | None = None,
    last_name: str = "Tester",
    status: str = "active",
    roles: Sequence[str] = ("Member",),
    team: Team | None = None,
    groups: Sequence[Group] = (),
    password: str | None = PASSWORD,
    last_seen_at: datetime | None = None,
) -> User:
    n = next(_counter)
    email = email or f"user{n}@example.com"
    user = User(
        organization_id=org.id,
        email=email,
        email_normalized=email.lower(),
        first_name=first_name if first_name is not None else f"User{n:05d}",
        last_name=last_name,
        status=status,
        team_id=team.id if team else None,
        password_hash=password_hash(password) if password else None,
        email_verified_at=utcnow(),
        last_seen_at=last_seen_at,
    )
    db.add(user)
    db.flush()
    for name in roles:
        db.add(UserRole(organization_id=org.id, user_id=user.id, role_id=role(db, org, name).id))
    for group in groups:
        db.add(UserGroup(organization_id=org.id, user_id=user.id, group_id=group.id))
    db.flush()
    return user


def make_admin(db: Session, org: Organization, **kwargs: object) -> User:
    return make_user(db, org, roles=("Administrator",), **kwargs)  # type: ignore[arg-type]


def make_api_key(
    db: Session, org: Organization, role_name: str = "Administrator", team: Team | None = None
) -> str:
    created = auth.create_api_key(
        db,
        actor=system_actor(org.id, "tests"),
        name=f"key {next(_counter)}",
        role=role(db, org, role_name),
        team=team,
    )
    db.flush()
    return created.secret


def login(client: TestClient, email: str, password: str = PASSWORD) -> str:
    """Sign in through the portal form; returns the session's CSRF token."""
    page = client.get("/login")
    token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    response = client.post(
        "/login", data={"email": email, "password": password, "csrf_token": token}
    )
    assert response.status_code == 303, response.text
    console = client.get("/me")
    return console.text.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]
