"""A person's color scheme: chosen on /me (light, dark, or the system's), kept on their
account and written by the server on every page's <html>, so a dark page never flashes
light; someone on "system" (or signed out) gets the device's from a script of this site."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests import factories
from userdesk.audit.models import AuditEvent
from userdesk.organizations.models import Organization
from userdesk.users.models import User

SCRIPT = '<script src="/static/js/color-scheme.js"></script>'


@pytest.fixture
def ann(db: Session, org: Organization) -> User:
    return factories.make_user(db, org, email="ann@example.com", first_name="Ann", last_name="Lee")


@pytest.fixture
def laptop(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, base_url="http://testserver", follow_redirects=False) as client:
        yield client


def html_tag(page: str) -> str:
    found = re.search(r"<html[^>]*>", page)
    assert found, page[:300]
    return found.group(0)


def choose(client: TestClient, csrf: str | None, scheme: str) -> tuple[int, str, str]:
    data = {"color_scheme": scheme} | ({"csrf_token": csrf} if csrf else {})
    response = client.post("/me/color-scheme", data=data)
    return response.status_code, response.headers.get("location", ""), response.text


def test_everyone_starts_on_the_system_scheme_which_the_script_applies(
    laptop: TestClient, ann: User
) -> None:
    assert ann.color_scheme == "system"
    signed_out = laptop.get("/login").text
    assert html_tag(signed_out) == '<html lang="en" data-color-scheme="system">'
    assert SCRIPT in signed_out
    factories.login(laptop, ann.email)
    page = laptop.get("/me").text
    assert html_tag(page) == '<html lang="en" data-color-scheme="system">'
    assert SCRIPT in page
    checked = re.findall(r'value="(\w+)" class="form-selectgroup-input"\s+checked', page)
    assert checked == ["system"]
    script = laptop.get("/static/js/color-scheme.js")
    assert script.status_code == 200
    assert "prefers-color-scheme: dark" in script.text


@pytest.mark.parametrize("scheme", ["dark", "light"])
def test_a_chosen_scheme_is_kept_and_written_on_every_page_without_the_script(
    laptop: TestClient, db: Session, ann: User, scheme: str
) -> None:
    csrf = factories.login(laptop, ann.email)
    status, location, _ = choose(laptop, csrf, scheme)
    assert (status, location) == (303, "/me?done=color_scheme#appearance")
    db.refresh(ann)
    assert ann.color_scheme == scheme
    page = laptop.get(location).text
    assert "Your color scheme is saved." in page
    assert (
        html_tag(page) == f'<html lang="en" data-color-scheme="{scheme}" data-bs-theme="{scheme}">'
    )
    assert SCRIPT not in page
    checked = re.findall(r'value="(\w+)" class="form-selectgroup-input"\s+checked', page)
    assert checked == [scheme]
    # Another page, an error page too: the same colors.
    assert f'data-bs-theme="{scheme}"' in html_tag(laptop.get("/me?sent=1").text)
    missing = laptop.get("/console/users/999999999")
    assert missing.status_code in (403, 404)
    assert f'data-bs-theme="{scheme}"' in html_tag(missing.text)


def test_back_to_system_drops_the_servers_choice(
    laptop: TestClient, db: Session, ann: User
) -> None:
    csrf = factories.login(laptop, ann.email)
    choose(laptop, csrf, "dark")
    status, _, _ = choose(laptop, csrf, "system")
    assert status == 303
    db.refresh(ann)
    assert ann.color_scheme == "system"
    assert html_tag(laptop.get("/me").text) == '<html lang="en" data-color-scheme="system">'


def test_an_unknown_scheme_is_named_on_its_field_and_nothing_changes(
    laptop: TestClient, db: Session, ann: User
) -> None:
    csrf = factories.login(laptop, ann.email)
    choose(laptop, csrf, "dark")
    status, _, page = choose(laptop, csrf, "sepia")
    assert status == 400
    assert 'data-testid="color_scheme-color_scheme-error"' in page
    assert "The color scheme must be one of system, light, dark." in page
    db.refresh(ann)
    assert ann.color_scheme == "dark"
    assert 'data-bs-theme="dark"' in html_tag(page)  # the page stays in the person's colors


def test_the_choice_needs_the_csrf_token_and_a_session(
    laptop: TestClient, db: Session, ann: User
) -> None:
    status, location, _ = choose(laptop, None, "dark")
    assert status in (303, 401)  # signed out: to the sign-in page, or refused
    assert status == 401 or location.startswith("/login")
    factories.login(laptop, ann.email)
    status, _, _ = choose(laptop, None, "dark")
    assert status == 403
    db.refresh(ann)
    assert ann.color_scheme == "system"


def test_the_choice_is_the_persons_own_and_is_not_audited_nor_versioned(
    laptop: TestClient, db: Session, ann: User
) -> None:
    before = db.scalar(select(func.count()).select_from(AuditEvent))
    version = ann.version
    csrf = factories.login(laptop, ann.email)
    choose(laptop, csrf, "dark")
    db.expire_all()
    assert db.scalar(select(func.count()).select_from(AuditEvent)) == before
    assert db.get_one(User, ann.id).version == version


def test_the_console_pages_are_drawn_in_the_admins_scheme_the_users_list_too(
    laptop: TestClient, db: Session, org: Organization
) -> None:
    """The Users list's page is rendered once per distinct shell (web.console.views): the
    scheme is part of it, so two admins in different colors never share one."""
    dark = factories.make_admin(db, org, email="dark@example.com")
    light = factories.make_admin(db, org, email="light@example.com")
    for admin, scheme in ((dark, "dark"), (light, "light")):
        laptop.cookies.clear()
        csrf = factories.login(laptop, admin.email)
        choose(laptop, csrf, scheme)
        for path in ("/console/users", "/console/users?q=status:active", "/console/dashboard"):
            page = laptop.get(path)
            assert page.status_code == 200, path
            assert f'data-bs-theme="{scheme}"' in html_tag(page.text), (scheme, path)
