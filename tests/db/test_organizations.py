import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests import factories
from userdesk.access.models import Role
from userdesk.access.rules import BUILTIN_ROLES
from userdesk.errors import Conflict, InvalidInput, NotFound
from userdesk.organizations import service as organizations


def test_a_new_organization_has_the_builtin_roles_with_their_permissions(db: Session) -> None:
    org = factories.make_organization(db)
    roles = {r.name: r for r in db.scalars(select(Role).where(Role.organization_id == org.id))}
    assert set(roles) == {b.name for b in BUILTIN_ROLES}
    for builtin in BUILTIN_ROLES:
        assert set(roles[builtin.name].permissions) == {p.value for p in builtin.permissions}
        assert roles[builtin.name].scope == builtin.scope.value
        assert roles[builtin.name].builtin


def test_a_taken_slug_is_a_conflict(db: Session) -> None:
    factories.make_organization(db, slug="acme")
    with pytest.raises(Conflict):
        organizations.create_organization(db, slug="acme", name="Acme again")


def test_a_bad_slug_is_refused_naming_it(db: Session) -> None:
    with pytest.raises(InvalidInput) as caught:
        organizations.create_organization(db, slug="Not A Slug", name="x")
    assert "Not A Slug" in caught.value.fields["slug"]


def test_operator_commands_pick_the_only_organization_or_ask(db: Session) -> None:
    with pytest.raises(NotFound):
        organizations.resolve_organization(db, None)
    created = organizations.resolve_organization(db, None, create=True)
    assert created.slug == organizations.DEFAULT_SLUG
    assert organizations.resolve_organization(db, None).id == created.id
    factories.make_organization(db, slug="second")
    with pytest.raises(InvalidInput):
        organizations.resolve_organization(db, None)
    assert organizations.resolve_organization(db, "second").slug == "second"
