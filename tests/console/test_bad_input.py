"""Bad input through the console is a 400 page naming the field, never a 500 (issue 16, break 5)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests import factories
from userdesk.organizations.models import Organization
from userdesk.segments.models import Segment
from userdesk.users.models import User

HUGE = "99999999999999999999999"


@pytest.fixture
def csrf(client: TestClient, db: Session, org: Organization) -> str:
    return factories.login(client, factories.make_admin(db, org).email)


@pytest.mark.parametrize(
    ("path", "field"),
    [
        (f"/console/users/{HUGE}", "user_id"),
        (f"/console/users/{HUGE}/activity", "user_id"),
        (f"/console/segments/{HUGE}", "segment_id"),
        (f"/console/jobs/{HUGE}", "job_id"),
        (f"/console/imports/{HUGE}", "job_id"),
        (f"/console/imports/{HUGE}/report.csv", "job_id"),
        (f"/console/users?segment={HUGE}", "segment"),
    ],
)
def test_an_id_beyond_64_bits_in_a_console_url_is_a_400_naming_it(
    client: TestClient, csrf: str, path: str, field: str
) -> None:
    """Console URLs bound their ids like the API's, and the page names the one at fault."""
    response = client.get(path)
    assert response.status_code == 400, response.text[:300]
    assert f"<strong>{field}</strong>" in response.text


@pytest.mark.parametrize("path", ["/console/users", "/console/users/export"])
def test_a_nul_in_the_search_box_is_a_400_naming_q(
    client: TestClient, csrf: str, path: str
) -> None:
    """The search term never reaches SQLite's full-text index with a NUL in it."""
    response = client.get(path, params={"q": "ann\x00"})
    assert response.status_code == 400, response.text[:300]
    assert "<strong>q</strong>" in response.text
    assert "NUL" in response.text


def test_a_nul_in_a_new_users_name_is_a_400_naming_it_and_nobody_is_added(
    client: TestClient, db: Session, org: Organization, csrf: str
) -> None:
    """The form's fields are checked at the edge: nothing is stored."""
    response = client.post(
        "/console/users/new",
        data={"email": "nul@example.com", "first_name": "An\x00n", "csrf_token": csrf},
    )
    assert response.status_code == 400
    assert "<strong>first_name</strong>" in response.text
    assert db.scalar(select(func.count()).where(User.email == "nul@example.com")) == 0


def test_a_nul_in_a_segment_name_is_a_400_naming_it(
    client: TestClient, db: Session, org: Organization, csrf: str
) -> None:
    """Saving a view with a NUL in its name stores nothing."""
    response = client.post(
        "/console/segments", data={"name": "Mine\x00", "q": "", "csrf_token": csrf}
    )
    assert response.status_code == 400
    assert "<strong>name</strong>" in response.text
    assert db.scalar(select(func.count()).select_from(Segment)) == 0


@pytest.mark.parametrize(
    "email", ["a@b.\x00c", "x@acme.test,X", "<script>@x.test", "x@-acme.test", "x@acme..test"]
)
def test_an_invalid_email_in_the_new_user_form_is_shown_by_the_field(
    client: TestClient, csrf: str, email: str
) -> None:
    """The form comes back with the address refused beside it (or the edge names it)."""
    response = client.post(
        "/console/users/new", data={"email": email, "first_name": "Pia", "csrf_token": csrf}
    )
    assert response.status_code == 400
    assert "is not an email address" in response.text or "NUL" in response.text


def test_an_id_beyond_64_bits_in_the_edit_form_is_a_400_naming_it(
    client: TestClient, db: Session, org: Organization, csrf: str
) -> None:
    """A forged team or group id in the edit form is named, not sent to the database."""
    user = factories.make_user(db, org)
    response = client.post(
        f"/console/users/{user.id}/edit",
        data={
            "version": str(user.version),
            "first_name": "Ann",
            "email": user.email,
            "group_ids": [HUGE],
            "csrf_token": csrf,
        },
    )
    assert response.status_code == 400, response.text[:300]
    assert "is not an id" in response.text


def test_an_id_beyond_64_bits_in_a_bulk_selection_is_refused(
    client: TestClient, db: Session, org: Organization, csrf: str
) -> None:
    """Apply to selected with a forged id is a 400, not a 500."""
    response = client.get("/console/bulk", params={"action": "validate", "ids": [HUGE]})
    assert response.status_code == 400, response.text[:300]
    assert "is not an id" in response.text


def test_an_import_file_with_a_nul_is_refused_naming_the_row_and_column(
    client: TestClient, csrf: str
) -> None:
    """The upload page says which cell is at fault."""
    response = client.post(
        "/console/imports",
        files={"file": ("people.csv", b"email,first_name\nnul@example.com,A\x00\n", "text/csv")},
        data={"csrf_token": csrf},
    )
    assert response.status_code == 400
    assert "Row 2, column 2 (&#39;first_name&#39;)" in response.text
