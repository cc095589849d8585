"""users.role_ids holds each user's role ids as user_roles has them (migration 0025's
triggers), whichever path changes the links: the services, an import, a batch, the
demo's bulk inserts, a role deleted; and a role filter finds the same users with it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import Connection, delete, select, text, update
from sqlalchemy.orm import Session

from tests import factories
from tests.conftest import BoundDatabase
from userdesk import demo
from userdesk.access.models import Role
from userdesk.access.rules import system_actor
from userdesk.config import Settings
from userdesk.db.engine import make_engine
from userdesk.db.migrate import upgrade
from userdesk.organizations.models import Organization
from userdesk.query.builder import words
from userdesk.users import membership, service
from userdesk.users.models import User, UserRole
from userdesk.worker import Worker


def on_rows(db: Session, org: Organization) -> dict[int, list[int]]:
    """Each user's role_ids as the users table holds them."""
    rows = db.execute(select(User.id, User.role_ids).where(User.organization_id == org.id))
    return {user_id: list(role_ids) for user_id, role_ids in rows}


def in_links(db: Session, org: Organization) -> dict[int, list[int]]:
    """Each user's role ids from user_roles, in increasing order ([] for none)."""
    held: dict[int, list[int]] = {
        user_id: [] for user_id in db.scalars(select(User.id).where(User.organization_id == org.id))
    }
    links = select(UserRole.user_id, UserRole.role_id).order_by(UserRole.role_id)
    for user_id, role_id in db.execute(links.where(UserRole.organization_id == org.id)):
        held[user_id].append(role_id)
    return held


def assert_kept(db: Session, org: Organization) -> None:
    db.flush()
    assert on_rows(db, org) == in_links(db, org)


def role_id(db: Session, org: Organization, name: str) -> int:
    return factories.role(db, org, name).id


def test_the_services_that_set_roles_keep_role_ids(db: Session, org: Organization) -> None:
    """Links added one by one (the ORM), replaced, emptied, and an admin's role ensured."""
    ann = factories.make_user(db, org, roles=("Agent", "Member"))
    bob = factories.make_user(db, org, roles=())
    assert on_rows(db, org)[ann.id] == sorted(
        [role_id(db, org, "Agent"), role_id(db, org, "Member")]
    )
    assert on_rows(db, org)[bob.id] == []
    membership.replace_links(db, ann, roles=[factories.role(db, org, "Administrator")])
    assert on_rows(db, org)[ann.id] == [role_id(db, org, "Administrator")]
    membership.replace_links(db, ann, roles=[])
    assert on_rows(db, org)[ann.id] == []
    membership.attach(
        db,
        bob,
        membership.Membership(team=None, groups=[], roles=[factories.role(db, org, "Agent")]),
    )
    admin, _ = service.create_admin(
        db, actor=system_actor(org.id), email="root@example.com", password="a long password 1"
    )
    assert on_rows(db, org)[admin.id] == [role_id(db, org, "Administrator")]
    assert on_rows(db, org)[bob.id] == [role_id(db, org, "Agent")]
    assert_kept(db, org)


def test_an_import_keeps_role_ids(
    client: TestClient, db: Session, org: Organization, database: BoundDatabase, settings: Settings
) -> None:
    key = factories.make_api_key(db, org)
    csv = "email,roles\nann@example.com,Agent;Member\nbob@example.com,Agent\ncy@example.com,\n"
    response = client.post(
        "/api/v1/imports",
        files={"file": ("people.csv", csv.encode(), "text/csv")},
        data={"dry_run": "false"},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert response.status_code == 202, response.text
    worker = Worker(database, dataclasses.replace(settings, smtp_url=None))
    while worker.run_jobs():
        pass
    by_email = {
        u.email: u.id for u in db.scalars(select(User).where(User.organization_id == org.id))
    }
    rows = on_rows(db, org)
    agent, member = role_id(db, org, "Agent"), role_id(db, org, "Member")
    assert rows[by_email["ann@example.com"]] == sorted([agent, member])
    assert rows[by_email["bob@example.com"]] == [agent]
    assert rows[by_email["cy@example.com"]] == []
    assert_kept(db, org)


def test_a_batch_keeps_role_ids(client: TestClient, db: Session, org: Organization) -> None:
    key = factories.make_api_key(db, org)
    agent = role_id(db, org, "Agent")
    response = client.post(
        "/api/v1/users/batch",
        json={
            "users": [
                {"email": "ann@example.com", "role_ids": [str(agent)]},
                {"email": "bob@example.com"},
            ]
        },
        headers={"Authorization": f"Bearer {key}"},
    )
    assert response.status_code == 200, response.text
    ann = db.scalars(select(User).where(User.email_normalized == "ann@example.com")).one()
    assert on_rows(db, org)[ann.id] == [agent]
    assert_kept(db, org)


def test_the_demos_bulk_inserts_keep_role_ids(db: Session, org: Organization) -> None:
    demo.populate(db, organization=org, count=300, seed=5)
    rows = on_rows(db, org)
    assert len(rows) >= 300
    assert all(len(ids) == 1 for ids in rows.values())
    assert_kept(db, org)


def test_links_deleted_changed_or_cascaded_keep_role_ids(db: Session, org: Organization) -> None:
    """Written straight to user_roles, as no service does: the database keeps the rule."""
    ann = factories.make_user(db, org, roles=("Agent",))
    bob = factories.make_user(db, org, roles=("Agent", "Member"))
    custom = Role(organization_id=org.id, name="Auditor")
    db.add(custom)
    db.flush()
    db.add(UserRole(organization_id=org.id, user_id=ann.id, role_id=custom.id))
    db.flush()
    assert on_rows(db, org)[ann.id] == sorted([role_id(db, org, "Agent"), custom.id])
    db.execute(
        update(UserRole)
        .where(UserRole.user_id == bob.id, UserRole.role_id == role_id(db, org, "Member"))
        .values(user_id=ann.id)
    )
    assert on_rows(db, org)[bob.id] == [role_id(db, org, "Agent")]
    db.execute(delete(Role).where(Role.id == custom.id))  # its links go by cascade
    assert custom.id not in on_rows(db, org)[ann.id]
    db.execute(delete(UserRole).where(UserRole.user_id == bob.id))
    assert on_rows(db, org)[bob.id] == []
    assert_kept(db, org)


def test_a_role_filter_finds_the_holders_of_the_role_in_every_sort(
    db: Session, org: Organization
) -> None:
    demo.populate(db, organization=org, count=600, seed=7)
    # Administrators are rare in the demo's draw: two of them whatever the seed gives.
    factories.make_user(db, org, first_name="Ada", last_name="Jonsson", roles=("Administrator",))
    factories.make_user(db, org, first_name="Abe", last_name="Stone", roles=("Administrator",))
    db.execute(text("ANALYZE"))
    actor = system_actor(org.id)
    people = db.execute(
        select(User.id, User.first_name, User.last_name, User.email).where(
            User.organization_id == org.id
        )
    ).all()
    texts = {str(p.id): f"{p.first_name} {p.last_name} {p.email}".lower() for p in people}
    wanted = {
        "": lambda _text: True,
        "a ": lambda text_: any(w.startswith("a") for w in words(text_)),
        "son ": lambda text_: "son" in text_,
    }
    for name in ("Agent", "Member", "Administrator"):
        holders = {
            str(user_id)
            for user_id in db.scalars(
                select(UserRole.user_id).where(UserRole.role_id == role_id(db, org, name))
            )
        }
        assert holders
        for term, matches in wanted.items():
            q = f"{term}role:{name}"
            expected = {u for u in holders if matches(texts[u])}
            for sort in ("name", "-seen", "created", "email"):
                found: set[str] = set()
                cursor = None
                while True:
                    page = service.list_users(db, actor=actor, q=q, sort=sort, cursor=cursor)
                    found.update(str(u["id"]) for u in page.items)
                    cursor = page.next_cursor
                    if cursor is None:
                        break
                assert found == expected, (q, sort)


def test_the_migration_fills_role_ids_from_the_links_there_before_it(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/old.db")
    upgrade(engine, "0024")
    with engine.begin() as conn:
        _old_users_with_links(conn)
    upgrade(engine)
    with engine.connect() as conn:
        rows = dict(conn.execute(text("SELECT id, role_ids FROM users ORDER BY id")).all())
    assert rows == {1: "[1,2]", 2: "[2]", 3: "[]"}
    engine.dispose()


def _old_users_with_links(conn: Connection) -> None:
    conn.execute(
        text(
            "INSERT INTO organizations (id, slug, name, settings, created_at) "
            "VALUES (1, 'o', 'O', '{}', '2026-01-01')"
        )
    )
    for role in (1, 2):
        conn.execute(
            text(
                "INSERT INTO roles (id, organization_id, name, description, scope, builtin, "
                "created_at) VALUES (:id, 1, :name, '', 'organization', 0, '2026-01-01')"
            ),
            {"id": role, "name": f"Role {role}"},
        )
    for user_id in (1, 2, 3):
        conn.execute(
            text(
                "INSERT INTO users (id, organization_id, email, email_normalized, first_name, "
                "last_name, status, created_via, version, created_at, updated_at) VALUES "
                "(:id, 1, :email, :email, '', '', 'active', 'admin', 1, '2026-01-01', "
                "'2026-01-01')"
            ),
            {"id": user_id, "email": f"u{user_id}@example.com"},
        )
    for user_id, role in ((1, 2), (1, 1), (2, 2)):
        conn.execute(
            text("INSERT INTO user_roles (organization_id, user_id, role_id) VALUES (1, :u, :r)"),
            {"u": user_id, "r": role},
        )
