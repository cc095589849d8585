"""Migration 0030 gives scim.manage to every organization's built-in Administrator, and to
no other role; a new organization's Administrator holds it too."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from tests import factories
from userdesk.access.models import RolePermission
from userdesk.db.engine import make_engine
from userdesk.db.migrate import upgrade


def test_every_builtin_administrator_gets_scim_manage_and_nobody_else(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/old.db")
    upgrade(engine, "0028")
    with engine.begin() as conn:
        for org in (1, 2):
            conn.execute(
                text(
                    "INSERT INTO organizations (id, slug, name, settings, created_at) "
                    "VALUES (:id, :slug, 'O', '{}', '2026-01-01')"
                ),
                {"id": org, "slug": f"o{org}"},
            )
        roles = [
            (10, 1, "Administrator", True),
            (11, 1, "Agent", True),
            (20, 2, "Administrator", True),
            (21, 2, "Helper", False),
        ]
        for role_id, org, name, builtin in roles:
            conn.execute(
                text(
                    "INSERT INTO roles (id, organization_id, name, description, scope, builtin, "
                    "created_at) VALUES (:id, :org, :name, '', 'organization', :builtin, "
                    "'2026-01-01')"
                ),
                {"id": role_id, "org": org, "name": name, "builtin": builtin},
            )
            conn.execute(
                text(
                    "INSERT INTO role_permissions (role_id, organization_id, permission) "
                    "VALUES (:id, :org, 'users.read')"
                ),
                {"id": role_id, "org": org},
            )
    upgrade(engine)
    with engine.connect() as conn:
        holders = conn.execute(
            text(
                "SELECT role_id, organization_id FROM role_permissions "
                "WHERE permission = 'scim.manage' ORDER BY role_id"
            )
        ).all()
    engine.dispose()
    assert [tuple(row) for row in holders] == [(10, 1), (20, 2)]


def test_a_new_organizations_administrator_holds_scim_manage(db: Session) -> None:
    org = factories.make_organization(db)
    held = {
        name: set(
            db.scalars(
                select(RolePermission.permission).where(
                    RolePermission.role_id == factories.role(db, org, name).id
                )
            )
        )
        for name in ("Administrator", "Team Administrator", "Agent")
    }
    assert "scim.manage" in held["Administrator"]
    assert "scim.manage" not in held["Team Administrator"] | held["Agent"]
