"""Settings > User fields (the organization's user profile schema in the console), the
custom fields on a user's page and its edit form, and in the invite wizard."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from markupsafe import escape
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests import factories
from userdesk.audit.models import AuditEvent
from userdesk.organizations.models import Organization
from userdesk.users.models import User, UserField, UserFieldValue

PAGE = "/console/settings/user-fields"


def add_field(client: TestClient, csrf: str, **given: Any) -> Any:
    form: dict[str, Any] = {"edit_by": "admins", "csrf_token": csrf} | given
    return client.post(PAGE, data=form, follow_redirects=False)


def field_of(db: Session, org: Organization, key: str) -> UserField:
    db.expire_all()
    return db.scalars(
        select(UserField).where(UserField.organization_id == org.id, UserField.key == key)
    ).one()


def fresh(db: Session, user: User) -> User:
    db.expire_all()
    found = db.get(User, user.id)
    assert found is not None
    return found


def test_a_field_is_added_listed_and_audited_through_the_form(
    client: TestClient, db: Session, org: Organization
) -> None:
    """The add form's names (key, label, type, options, required_on, edit_by, searchable)
    make the field the API would, and the page lists it."""
    admin = factories.make_admin(db, org)
    csrf = factories.login(client, admin.email)
    settings = client.get("/console/settings")
    assert f'href="{PAGE}"' in settings.text
    empty = client.get(PAGE)
    assert empty.status_code == 200
    assert ">Add field</button>" in empty.text
    made = add_field(
        client,
        csrf,
        key="plan",
        label="Plan",
        type="choice",
        options="Free\nPro\n\nEnterprise\n",
        required_on=["invitation", "self"],
        edit_by="self",
        searchable="",
    )
    assert made.status_code == 303, made.text
    field = field_of(db, org, "plan")
    assert (field.label, field.type, field.options) == (
        "Plan",
        "choice",
        ["Free", "Pro", "Enterprise"],
    )
    assert field.required_on == ["invitation", "self"]
    assert (field.editable_by, field.visibility, field.searchable) == ("self", "self", False)
    listed = client.get(PAGE).text
    row = listed.split('data-field="plan"', 1)[1].split("</tr>", 1)[0]
    assert "One of a list" in row
    assert "On invitation" in row
    assert "Free, Pro, Enterprise" in row
    audited = db.scalars(select(AuditEvent).where(AuditEvent.action == "user_field.created")).one()
    assert audited.target_id == str(field.id)


@pytest.mark.parametrize(
    ("type_", "extra"),
    [
        ("text", {"min_length": "2", "max_length": "20", "pattern": "[A-Z][a-z]+"}),
        ("number", {"min": "0", "max": "100000"}),
        ("boolean", {}),
        ("date", {"min": "2000-01-01"}),
        ("choice", {"options": "Free\nPro"}),
        ("choices", {"options": "Red\nGreen\nBlue"}),
        ("email", {}),
        ("url", {}),
    ],
)
def test_each_type_is_added_and_its_value_edited_on_the_user_page(
    client: TestClient, db: Session, org: Organization, type_: str, extra: dict[str, str]
) -> None:
    """Every type goes through the console: added in Settings, filled in the user's edit
    form, shown on their page as its type reads, refused by name when it does not fit."""
    admin = factories.make_admin(db, org)
    user = factories.make_user(db, org, first_name="Uma")
    csrf = factories.login(client, admin.email)
    assert (
        add_field(client, csrf, key="f", label="The field", type=type_, **extra).status_code == 303
    )
    good: dict[str, Any] = {
        "text": ("Anna", "Anna", "Anna"),
        "number": ("1200", 1200, "1,200"),
        "boolean": ("yes", True, 'data-yes-no="true"'),
        "date": ("2024-02-29", "2024-02-29", "2024-02-29"),
        "choice": ("pro", "Pro", "Pro"),
        "choices": (["Red", "Blue"], ["Red", "Blue"], "Blue"),
        "email": ("ann@example.org", "ann@example.org", "mailto:ann@example.org"),
        "url": ("https://example.org/a", "https://example.org/a", 'href="https://example.org/a"'),
    }[type_]
    bad = {
        "text": "anna",
        "number": "lots",
        "boolean": "maybe",
        "date": "1999-12-31",
        "choice": "Gold",
        "choices": ["Red", "Pink"],
        "email": "not an email",
        "url": "ftp://example.org",
    }[type_]
    form = client.get(f"/console/users/{user.id}?action=edit").text
    assert 'name="attributes.f"' in form
    base = {
        "csrf_token": csrf,
        "first_name": "Uma",
        "last_name": user.last_name,
        "email": user.email,
    }
    refused = client.post(
        f"/console/users/{user.id}/edit",
        data=base | {"version": str(user.version), "attributes.f": bad},
        follow_redirects=False,
    )
    assert refused.status_code == 400, refused.text
    shown_bad = bad[-1] if isinstance(bad, list) else bad
    assert 'data-testid="error-attributes.f"' in refused.text
    assert str(escape(f"'{shown_bad}'")) in refused.text or type_ == "choices"
    assert fresh(db, user).attributes is None
    saved = client.post(
        f"/console/users/{user.id}/edit",
        data=base | {"version": str(fresh(db, user).version), "attributes.f": good[0]},
        follow_redirects=False,
    )
    assert saved.status_code == 303, saved.text.split("<body", 1)[-1][:3000]
    assert fresh(db, user).attributes == {"f": good[1]}
    page = client.get(f"/console/users/{user.id}").text
    shown = page.split('<dd class="col-sm-9" data-attribute="f">', 1)[1].split("</dd>", 1)[0]
    assert good[2] in shown


def test_a_stale_edit_with_fields_is_refused_and_keeps_what_was_typed(
    client: TestClient, db: Session, org: Organization
) -> None:
    admin = factories.make_admin(db, org)
    user = factories.make_user(db, org)
    csrf = factories.login(client, admin.email)
    add_field(client, csrf, key="seats", label="Seats", type="number")
    old_version = user.version
    user.version += 1
    db.flush()
    stale = client.post(
        f"/console/users/{user.id}/edit",
        data={
            "csrf_token": csrf,
            "version": str(old_version),
            "first_name": user.first_name,
            "last_name": user.last_name,
            "email": user.email,
            "attributes.seats": "42",
        },
    )
    assert stale.status_code == 412
    assert 'data-testid="stale"' in stale.text
    assert 'name="attributes.seats" value="42"' in stale.text
    assert fresh(db, user).attributes is None


def test_fields_admins_may_not_edit_are_read_only_and_refused(
    client: TestClient, db: Session, org: Organization
) -> None:
    admin = factories.make_admin(db, org)
    user = factories.make_user(db, org)
    csrf = factories.login(client, admin.email)
    add_field(client, csrf, key="crm_id", label="CRM id", type="text", edit_by="system")
    key = factories.make_api_key(db, org)
    client.patch(
        f"/api/v1/users/{user.id}",
        json={"attributes": {"crm_id": "C-1"}},
        headers={"Authorization": f"Bearer {key}", "If-Match": f'"{user.version}"'},
    )
    form = client.get(f"/console/users/{user.id}?action=edit").text
    assert 'name="attributes.crm_id"' not in form
    assert 'data-testid="read-only-attribute"' in form
    assert "C-1" in form
    forced = client.post(
        f"/console/users/{user.id}/edit",
        data={
            "csrf_token": csrf,
            "version": str(fresh(db, user).version),
            "first_name": user.first_name,
            "last_name": user.last_name,
            "email": user.email,
            "attributes.crm_id": "hacked",
        },
        follow_redirects=False,
    )
    assert forced.status_code == 303  # the field is not the admin's to send: left as it was
    assert fresh(db, user).attributes == {"crm_id": "C-1"}


def test_an_admin_without_users_update_sees_values_but_no_edit_form(
    client: TestClient, db: Session, org: Organization
) -> None:
    admin = factories.make_admin(db, org)
    agent = factories.make_user(db, org, roles=("Agent",))
    user = factories.make_user(db, org)
    csrf = factories.login(client, admin.email)
    add_field(client, csrf, key="company", label="Company", type="text")
    client.post(
        f"/console/users/{user.id}/edit",
        data={
            "csrf_token": csrf,
            "version": str(user.version),
            "first_name": user.first_name,
            "last_name": user.last_name,
            "email": user.email,
            "attributes.company": "Acme",
        },
    )
    client.post("/logout", data={"csrf_token": csrf})
    agent_csrf = factories.login(client, agent.email)
    page = client.get(f"/console/users/{user.id}?action=edit").text
    assert "Acme" in page
    assert 'name="attributes.company"' not in page
    refused = client.post(
        f"/console/users/{user.id}/edit",
        data={
            "csrf_token": agent_csrf,
            "version": str(fresh(db, user).version),
            "attributes.company": "Other",
        },
    )
    assert refused.status_code == 403
    assert fresh(db, user).attributes == {"company": "Acme"}


def test_bad_settings_are_named_with_their_value(
    client: TestClient, db: Session, org: Organization
) -> None:
    admin = factories.make_admin(db, org)
    csrf = factories.login(client, admin.email)
    reserved = add_field(client, csrf, key="status", label="Status", type="text")
    assert reserved.status_code == 400
    assert "built-in filter" in reserved.text
    assert 'value="status"' in reserved.text  # the form keeps what was typed
    bad_key = add_field(client, csrf, key="Bad Key", label="X", type="text")
    assert bad_key.status_code == 400
    assert str(escape("'Bad Key' is not a key")) in bad_key.text
    no_options = add_field(client, csrf, key="plan", label="Plan", type="choice")
    assert no_options.status_code == 400
    assert "a choice field needs at least one option" in no_options.text
    bad_limit = add_field(client, csrf, key="seats", label="Seats", type="number", min="ten")
    assert bad_limit.status_code == 400
    assert str(escape("'ten' is not a number")) in bad_limit.text
    assert add_field(client, csrf, key="plan", label="Plan", type="text").status_code == 303
    taken = add_field(client, csrf, key="plan", label="Plan again", type="text")
    assert taken.status_code == 409
    assert str(escape("'plan' is taken")) in taken.text


def test_a_field_is_edited_archived_restored_and_purged(
    client: TestClient, db: Session, org: Organization
) -> None:
    admin = factories.make_admin(db, org)
    user = factories.make_user(db, org)
    csrf = factories.login(client, admin.email)
    add_field(client, csrf, key="company", label="Company", type="text")
    field = field_of(db, org, "company")
    client.post(
        f"/console/users/{user.id}/edit",
        data={
            "csrf_token": csrf,
            "version": str(user.version),
            "first_name": user.first_name,
            "last_name": user.last_name,
            "email": user.email,
            "attributes.company": "Acme",
        },
    )
    form = client.get(f"{PAGE}/{field.id}").text
    assert 'data-testid="edit-field"' in form
    assert 'value="Company"' in form
    saved = client.post(
        f"{PAGE}/{field.id}",
        data={
            "csrf_token": csrf,
            "label": "Company name",
            "type": "text",
            "edit_by": "admins",
            "visibility": "admins",
            "searchable": "true",
            "max_length": "80",
        },
        follow_redirects=False,
    )
    assert saved.status_code == 303, saved.text.split("<body", 1)[-1][:3000]
    field = field_of(db, org, "company")
    assert (field.label, field.searchable, field.validation) == (
        "Company name",
        True,
        {"max_length": 80},
    )
    assert client.post(f"{PAGE}/{field.id}/archive", data={"csrf_token": csrf}).status_code == 303
    assert field_of(db, org, "company").archived_at is not None
    assert 'data-attribute="company"' not in client.get(f"/console/users/{user.id}").text
    assert fresh(db, user).attributes == {"company": "Acme"}  # kept while archived
    client.post(f"{PAGE}/{field.id}/restore", data={"csrf_token": csrf})
    assert field_of(db, org, "company").archived_at is None
    restored = client.get(f"/console/users/{user.id}").text
    assert 'data-attribute="company">Acme</dd>' in restored
    client.post(f"{PAGE}/{field.id}/archive", data={"csrf_token": csrf})
    field_id = field.id
    confirm = client.get(f"{PAGE}/{field.id}?purge=1").text
    assert 'data-testid="purge-dialog"' in confirm
    typo = client.post(
        f"{PAGE}/{field.id}/purge", data={"csrf_token": csrf, "confirm_key": "compan"}
    )
    assert typo.status_code == 400
    assert str(escape("'compan' is not the key 'company'")) in typo.text
    assert field_of(db, org, "company") is not None
    purged = client.post(
        f"{PAGE}/{field.id}/purge",
        data={"csrf_token": csrf, "confirm_key": "company"},
        follow_redirects=False,
    )
    assert purged.status_code == 303
    db.expire_all()
    assert db.scalar(select(UserField.id).where(UserField.id == field_id)) is None
    assert fresh(db, user).attributes is None
    actions = set(
        db.scalars(select(AuditEvent.action).where(AuditEvent.target_type == "user_field"))
    )
    assert {
        "user_field.updated",
        "user_field.archived",
        "user_field.restored",
        "user_field.purged",
    } <= actions


def test_a_type_change_that_loses_values_is_refused_until_told_to_drop_them(
    client: TestClient, db: Session, org: Organization
) -> None:
    admin = factories.make_admin(db, org)
    first = factories.make_user(db, org)
    second = factories.make_user(db, org)
    csrf = factories.login(client, admin.email)
    add_field(client, csrf, key="seats", label="Seats", type="text")
    for user, value in ((first, "12"), (second, "a dozen")):
        client.post(
            f"/console/users/{user.id}/edit",
            data={
                "csrf_token": csrf,
                "version": str(fresh(db, user).version),
                "first_name": user.first_name,
                "last_name": user.last_name,
                "email": user.email,
                "attributes.seats": value,
            },
        )
    field = field_of(db, org, "seats")
    change = {"csrf_token": csrf, "label": "Seats", "type": "number", "edit_by": "admins"}
    refused = client.post(f"{PAGE}/{field.id}", data=change)
    assert refused.status_code == 409
    assert 'data-testid="unconvertible"' in refused.text
    assert "1 of 2 values" in refused.text
    assert "a dozen" in refused.text
    assert 'name="drop_unconvertible"' in refused.text
    assert field_of(db, org, "seats").type == "text"  # nothing changed
    assert fresh(db, first).attributes == {"seats": "12"}
    dropped = client.post(
        f"{PAGE}/{field.id}", data=change | {"drop_unconvertible": "true"}, follow_redirects=False
    )
    assert dropped.status_code == 303, dropped.text
    assert field_of(db, org, "seats").type == "number"
    assert fresh(db, first).attributes == {"seats": 12}
    assert fresh(db, second).attributes is None
    assert (
        db.scalar(select(UserFieldValue.number_value).where(UserFieldValue.user_id == first.id))
        == 12
    )


@pytest.mark.parametrize("role", ["Agent", "Team Administrator"])
def test_who_may_not_manage_settings_gets_403_on_every_user_fields_route(
    client: TestClient, db: Session, org: Organization, role: str
) -> None:
    admin = factories.make_admin(db, org)
    csrf = factories.login(client, admin.email)
    add_field(client, csrf, key="plan", label="Plan", type="text")
    field = field_of(db, org, "plan")
    client.post("/logout", data={"csrf_token": csrf})
    team = factories.make_team(db, org)
    other = factories.make_user(db, org, roles=(role,), team=team)
    their_csrf = factories.login(client, other.email)
    for path in (PAGE, f"{PAGE}/{field.id}", f"{PAGE}/{field.id}?purge=1"):
        assert client.get(path).status_code == 403, path
    posts = {
        PAGE: {"key": "other", "label": "Other", "type": "text", "edit_by": "admins"},
        f"{PAGE}/{field.id}": {"label": "Renamed", "type": "text"},
        f"{PAGE}/{field.id}/archive": {},
        f"{PAGE}/{field.id}/restore": {},
        f"{PAGE}/{field.id}/purge": {"confirm_key": "plan"},
    }
    for path, form in posts.items():
        assert client.post(path, data={"csrf_token": their_csrf} | form).status_code == 403, path
    field = field_of(db, org, "plan")
    assert (field.label, field.archived_at) == ("Plan", None)
    assert db.scalar(select(UserField.id).where(UserField.key == "other")) is None


def test_the_invite_wizard_asks_fields_required_on_invitation_per_person(
    client: TestClient, db: Session, org: Organization
) -> None:
    """A field required on invitation is an input in each person's row; left empty or
    refused, nobody is invited and the row's field is named; filled, each created user
    holds their value."""
    admin = factories.make_admin(db, org)
    csrf = factories.login(client, admin.email)
    add_field(
        client,
        csrf,
        key="plan",
        label="Plan",
        type="choice",
        options="Free\nPro",
        required_on=["invitation"],
    )
    add_field(client, csrf, key="nickname", label="Nickname", type="text")  # not required
    wizard = client.get("/console/invite").text
    assert 'name="attributes.plan"' in wizard
    assert 'name="attributes.nickname"' not in wizard
    pasted = client.post(
        "/console/invite/people",
        data={"paste": "a@example.com\nb@example.com", "csrf_token": csrf},
        headers={"HX-Request": "true"},
    )
    assert pasted.text.count('name="attributes.plan"') == 2
    people = {
        "email": ["ann@example.com", "bob@example.com"],
        "first_name": ["Ann", "Bob"],
        "last_name": ["A", "B"],
        "csrf_token": csrf,
    }
    missing = client.post(
        "/console/invite", data=people | {"attributes.plan": ["Pro", ""]}, follow_redirects=False
    )
    assert missing.status_code == 400
    assert "people[1].attributes.plan" in missing.text
    assert str(escape("'Plan' is required")) in missing.text
    wrong = client.post(
        "/console/invite",
        data=people | {"attributes.plan": ["Gold", "Free"]},
        follow_redirects=False,
    )
    assert wrong.status_code == 400
    assert "people[0].attributes.plan" in wrong.text
    assert "Gold" in wrong.text
    db.expire_all()
    assert db.scalar(select(User.id).where(User.email == "ann@example.com")) is None
    made = client.post(
        "/console/invite",
        data=people | {"attributes.plan": ["pro", "Free"]},
        follow_redirects=False,
    )
    assert made.status_code == 303, made.text
    db.expire_all()
    held = dict(
        db.execute(
            select(User.email, User.attributes).where(
                User.organization_id == org.id, User.email.in_(people["email"])
            )
        ).all()
    )
    assert held == {"ann@example.com": {"plan": "Pro"}, "bob@example.com": {"plan": "Free"}}
    indexed = db.scalars(
        select(UserFieldValue.text_value).where(UserFieldValue.organization_id == org.id)
    ).all()
    assert sorted(indexed) == ["free", "pro"]
