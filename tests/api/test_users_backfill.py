"""A host product backfills when its people really signed up: POST /api/v1/users and the
CSV import take created_at (and the import, last_login_at and last_seen_at), past only,
and scoring "as of" a date reads it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests import factories
from tests.api.test_import import bearer, run_jobs
from tests.conftest import BoundDatabase
from userdesk.access.rules import system_actor
from userdesk.audit.models import AuditEvent
from userdesk.churn import scoring
from userdesk.churn.models import ChurnScore
from userdesk.config import Settings
from userdesk.db.base import utcnow
from userdesk.imports import rules as import_rules
from userdesk.jobs import service as jobs
from userdesk.organizations.models import Organization
from userdesk.users.models import User
from userdesk.users.rules import history_time

DAY = timedelta(days=1)


def created_event(db: Session, user_id: str) -> AuditEvent:
    return db.scalars(
        select(AuditEvent).where(
            AuditEvent.target_id == user_id,
            AuditEvent.action.in_(("user.created", "user.imported")),
        )
    ).one()


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("2024-03-01T09:30:00Z", datetime(2024, 3, 1, 9, 30, tzinfo=UTC)),
        ("2024-03-01T09:30:00.250+02:00", datetime(2024, 3, 1, 7, 30, 0, 250000, tzinfo=UTC)),
        ("2024-03-01", datetime(2024, 3, 1, tzinfo=UTC)),  # a date: midnight UTC
    ],
)
def test_a_user_created_with_a_past_created_at_keeps_it_and_the_audit_says_so(
    client: TestClient, db: Session, org: Organization, given: str, stored: datetime
) -> None:
    key = factories.make_api_key(db, org)
    response = client.post(
        "/api/v1/users",
        json={"email": "early@example.com", "created_at": given},
        headers=bearer(key),
    )
    assert response.status_code == 201, response.text
    shown = response.json()
    assert datetime.fromisoformat(shown["created_at"]) == stored
    user = db.get_one(User, int(shown["id"]))
    assert user.created_at == stored
    assert user.validated_at == stored  # validated on creation: when they signed up
    assert created_event(db, shown["id"]).changes["created_at"] == stored.isoformat()
    read = client.get(f"/api/v1/users/{shown['id']}", headers=bearer(key)).json()
    assert datetime.fromisoformat(read["created_at"]) == stored


def test_without_created_at_a_user_is_created_now_and_the_audit_does_not_mention_it(
    client: TestClient, db: Session, org: Organization
) -> None:
    key = factories.make_api_key(db, org)
    before = utcnow()
    shown = client.post(
        "/api/v1/users", json={"email": "now@example.com"}, headers=bearer(key)
    ).json()
    assert datetime.fromisoformat(shown["created_at"]) >= before - timedelta(seconds=1)
    assert "created_at" not in created_event(db, shown["id"]).changes


TOMORROW = (utcnow() + DAY).isoformat()


@pytest.mark.parametrize(
    ("given", "said", "shown"),
    [
        (TOMORROW, "in the future", TOMORROW),
        ("2999-01-01", "in the future", "'2999-01-01'"),
        ("1969-12-31T23:00:00Z", "before 1970-01-01", "'1969-12-31T23:00:00Z'"),
        ("2024-03-01T09:30:00", "not an ISO 8601 time with an offset", "'2024-03-01T09:30:00'"),
        ("2024-02-30", "not a date that exists", "'2024-02-30'"),
        ("yesterday", "not an ISO 8601 time", "'yesterday'"),
        ("2024-03-01\x00", "NUL", "\\x00"),
        ("2024-03-01T09:30:00Z" + " " * 100, "not an ISO 8601 time", "'2024-03-01T09:30:00Z "),
    ],
)
def test_a_bad_or_future_created_at_is_a_400_naming_the_field_and_value(
    client: TestClient, db: Session, org: Organization, given: str, said: str, shown: str
) -> None:
    key = factories.make_api_key(db, org)
    response = client.post(
        "/api/v1/users", json={"email": "bad@example.com", "created_at": given}, headers=bearer(key)
    )
    assert response.status_code == 400, response.text
    errors = {e["field"]: e["detail"] for e in response.json()["errors"]}
    assert said in errors["created_at"]
    assert shown in errors["created_at"]
    assert db.scalar(select(User).where(User.email_normalized == "bad@example.com")) is None


def test_a_created_at_that_is_not_text_is_a_400(
    client: TestClient, db: Session, org: Organization
) -> None:
    key = factories.make_api_key(db, org)
    response = client.post(
        "/api/v1/users",
        json={"email": "n@example.com", "created_at": 1700000000},
        headers=bearer(key),
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "created_at"


def test_history_time_refuses_a_sign_in_before_the_sign_up() -> None:
    """A pure rule: the import's last_login_at is not before the row's created_at."""
    now = utcnow()
    signed_up = datetime(2024, 3, 1, tzinfo=UTC)
    assert history_time("2024-03-02", now=now, not_before=signed_up)[1] is None
    moment, problem = history_time("2024-02-28", now=now, not_before=signed_up)
    assert moment is None
    assert problem is not None
    assert "before the sign-up" in problem


HISTORY_CSV = (
    "email,first name,signed up,last login,last seen\r\n"
    "ok@example.com,Ok,2023-05-01,2024-01-02T10:00:00Z,2024-01-03T11:00:00+01:00\r\n"
    "plain@example.com,Plain,,,\r\n"
    "future@example.com,Fut,2999-01-01,,\r\n"
    "early@example.com,Early,2023-05-01,2023-04-01,\r\n"
    "junk@example.com,Junk,last spring,,\r\n"
)


def start_import(client: TestClient, key: str, text: str, **form: str) -> dict:
    response = client.post(
        "/api/v1/imports",
        files={"file": ("history.csv", text.encode(), "text/csv")},
        data=form,
        headers=bearer(key),
    )
    assert response.status_code == 202, response.text
    return response.json()


def test_an_import_takes_created_at_last_login_and_last_seen_and_refuses_bad_rows_by_number(
    client: TestClient, db: Session, org: Organization, database: BoundDatabase, settings: Settings
) -> None:
    key = factories.make_api_key(db, org)
    job = start_import(client, key, HISTORY_CSV, dry_run="false")
    mapping = job["params"]["mapping"]
    assert (mapping["created_at"], mapping["last_login_at"], mapping["last_seen_at"]) == (
        "signed up",
        "last login",
        "last seen",
    )
    before = utcnow()
    run_jobs(database, settings)
    done = client.get(f"/api/v1/jobs/{job['id']}", headers=bearer(key)).json()
    fates = {row["row"]: (row["fate"], row.get("detail", "")) for row in done["result"]}
    assert fates[2] == ("created", "")
    assert fates[3] == ("created", "")
    assert fates[4][0] == "invalid"
    assert "created_at '2999-01-01' is in the future" in fates[4][1]
    assert fates[5][0] == "invalid"
    assert "last_login_at '2023-04-01' is before the sign-up" in fates[5][1]
    assert fates[6][0] == "invalid"
    assert "created_at 'last spring'" in fates[6][1]
    ok = db.scalars(select(User).where(User.email == "ok@example.com")).one()
    assert ok.created_at == datetime(2023, 5, 1, tzinfo=UTC)
    assert ok.last_login_at == datetime(2024, 1, 2, 10, tzinfo=UTC)
    assert ok.last_seen_at == datetime(2024, 1, 3, 10, tzinfo=UTC)
    event = created_event(db, str(ok.id))
    assert event.changes["created_at"] == "2023-05-01T00:00:00+00:00"
    assert event.changes["row"] == 2
    plain = db.scalars(select(User).where(User.email == "plain@example.com")).one()
    assert plain.created_at >= before - timedelta(seconds=1)  # no time given: now
    assert plain.last_login_at is None
    assert plain.last_seen_at is None


def test_a_dry_run_reports_a_future_created_at_without_writing(
    client: TestClient, db: Session, org: Organization, database: BoundDatabase, settings: Settings
) -> None:
    key = factories.make_api_key(db, org)
    job = start_import(client, key, HISTORY_CSV)
    run_jobs(database, settings)
    done = client.get(f"/api/v1/jobs/{job['id']}", headers=bearer(key)).json()
    fates = {row["row"]: row["fate"] for row in done["result"]}
    assert fates == {
        2: "would be created",
        3: "would be created",
        4: "invalid",
        5: "invalid",
        6: "invalid",
    }
    assert db.scalar(select(User).where(User.email == "ok@example.com")) is None


def test_a_backfilled_user_is_scored_as_of_a_date_after_its_sign_up_and_not_before(
    client: TestClient, db: Session, org: Organization
) -> None:
    """Scoring skips the users created after its as-of date: with created_at backfilled, a
    score at a past date sees the people who had signed up by then."""
    key = factories.make_api_key(db, org)
    signed_up = utcnow() - 200 * DAY
    response = client.post(
        "/api/v1/users",
        json={"email": "veteran@example.com", "created_at": signed_up.isoformat()},
        headers=bearer(key),
    )
    assert response.status_code == 201, response.text
    user_id = int(response.json()["id"])

    def scored_as_of(as_of: datetime) -> bool:
        job = scoring.start(db, actor=system_actor(org.id, "tests"), as_of=as_of)
        while not jobs.step(db, job=job, base_url="http://testserver"):
            pass
        assert job.status == "done", job.problems
        run_id = job.params["run_id"]
        return (
            db.scalar(
                select(ChurnScore.user_id).where(
                    ChurnScore.run_id == run_id, ChurnScore.user_id == user_id
                )
            )
            is not None
        )

    assert scored_as_of(signed_up + 30 * DAY)
    assert not scored_as_of(signed_up - 30 * DAY)


def test_the_import_guesses_the_history_columns_from_their_names() -> None:
    """The CLI's import takes the guessed mapping: history columns are found by name."""
    columns = ["Email", "Signed Up", "last_login_at", "Last Seen", "Created at"]
    mapping = import_rules.guess_mapping(columns)
    assert (mapping["created_at"], mapping["last_login_at"], mapping["last_seen_at"]) == (
        "Signed Up",
        "last_login_at",
        "Last Seen",
    )
