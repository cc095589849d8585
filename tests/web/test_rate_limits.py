"""Sign-in hardening and the rate limits, as a browser and an API client meet them."""

from __future__ import annotations

import statistics
import time
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests import factories
from tests.console.test_sign_in import login_form_token
from userdesk.auth import rules, throttle
from userdesk.auth.signin import INVALID_CREDENTIALS
from userdesk.organizations.models import Organization

WRONG = "not the password at all"


def post_login(client: TestClient, email: str, password: str):  # type: ignore[no-untyped-def]
    token = login_form_token(client)
    return client.post("/login", data={"email": email, "password": password, "csrf_token": token})


def error_of(page: str) -> str:
    return page.split('data-testid="login-error">', 1)[1].split("<", 1)[0]


@pytest.mark.real_argon2  # argon2 at its real cost is what the timing compares
def test_an_unknown_email_and_a_wrong_password_get_the_same_answer_in_about_the_same_time(
    client: TestClient, db: Session, org: Organization
) -> None:
    """Same status, same message, and medians of a few timed attempts within a factor of
    two of each other (argon2 dominates both; the machine may be busy)."""
    user = factories.make_user(db, org)
    token = login_form_token(client)
    timings: dict[str, list[float]] = {"unknown": [], "wrong": []}
    answers: dict[str, set[tuple[int, str]]] = {"unknown": set(), "wrong": set()}
    for _ in range(4):  # below the lock-out threshold and the per-email limit
        for kind, email in (("unknown", "nobody-here@example.com"), ("wrong", user.email)):
            started = time.perf_counter()
            response = client.post(
                "/login", data={"email": email, "password": WRONG, "csrf_token": token}
            )
            timings[kind].append(time.perf_counter() - started)
            answers[kind].add((response.status_code, error_of(response.text)))
    assert answers["unknown"] == answers["wrong"] == {(401, INVALID_CREDENTIALS)}
    unknown, wrong = statistics.median(timings["unknown"]), statistics.median(timings["wrong"])
    assert max(unknown, wrong) / min(unknown, wrong) < 2.0, timings


def test_a_locked_account_answers_like_a_wrong_password(
    client: TestClient, db: Session, org: Organization
) -> None:
    user = factories.make_user(db, org)
    wrong = [post_login(client, user.email, WRONG) for _ in range(rules.LOCK_AFTER)]
    locked = post_login(client, user.email, factories.PASSWORD)
    assert locked.status_code == wrong[-1].status_code == 401
    assert error_of(locked.text) == error_of(wrong[-1].text) == INVALID_CREDENTIALS
    assert "userdesk_session" not in locked.headers.get("set-cookie", "")


def test_sign_in_is_limited_per_email_whether_or_not_it_has_an_account(
    client: TestClient, db: Session, org: Organization
) -> None:
    user = factories.make_user(db, org)
    for email in (user.email, "nobody-here@example.com"):
        for _ in range(throttle.SIGN_IN_PER_EMAIL.max_hits):
            assert post_login(client, email, WRONG).status_code == 401
        refused = post_login(client, email, WRONG)
        assert refused.status_code == 429
        assert error_of(refused.text) == "Too many attempts. Try again in 10 minutes."
        # From the first of the attempts, which ten argon2 checks ago on a busy machine.
        assert 540 < int(refused.headers["retry-after"]) <= 600


def test_sign_in_is_limited_per_ip(
    client: TestClient, db: Session, org: Organization, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        throttle, "SIGN_IN_PER_IP", throttle.Policy("signin.ip", 3, timedelta(minutes=5))
    )
    user = factories.make_user(db, org)
    for n in range(3):
        assert post_login(client, f"someone{n}@example.com", WRONG).status_code == 401
    refused = post_login(client, user.email, factories.PASSWORD)
    assert refused.status_code == 429
    assert error_of(refused.text) == "Too many attempts. Try again in 5 minutes."


def forgot(client: TestClient, email: str):  # type: ignore[no-untyped-def]
    page = client.get("/password/forgot")
    token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    return client.post("/password/forgot", data={"email": email, "csrf_token": token})


def test_password_reset_is_limited_per_email_with_the_same_answer_for_unknown_emails(
    client: TestClient, db: Session, org: Organization
) -> None:
    user = factories.make_user(db, org)
    for email in (user.email, "nobody-here@example.com"):
        pages = [forgot(client, email) for _ in range(throttle.PASSWORD_RESET_PER_EMAIL.max_hits)]
        assert {p.status_code for p in pages} == {200}
        refused = forgot(client, email)
        assert refused.status_code == 429
        assert "Too many attempts. Try again in 60 minutes." in refused.text
    known, unknown = forgot(client, user.email), forgot(client, "nobody-here@example.com")
    assert known.status_code == unknown.status_code == 429


def test_password_reset_is_limited_per_ip(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        throttle, "PASSWORD_RESET_PER_IP", throttle.Policy("reset.ip", 2, timedelta(minutes=30))
    )
    assert forgot(client, "a@example.com").status_code == 200
    assert forgot(client, "b@example.com").status_code == 200
    refused = forgot(client, "c@example.com")
    assert refused.status_code == 429
    assert "Too many attempts. Try again in 30 minutes." in refused.text


def test_my_verification_email_is_limited_per_account(
    client: TestClient, db: Session, org: Organization
) -> None:
    user = factories.make_user(db, org)
    user.email_verified_at = None
    db.flush()
    csrf = factories.login(client, user.email)
    for _ in range(throttle.VERIFICATION_PER_ACCOUNT.max_hits):
        sent = client.post("/me/verification-email", data={"csrf_token": csrf})
        assert sent.status_code == 303
    refused = client.post("/me/verification-email", data={"csrf_token": csrf})
    assert refused.status_code == 429
    assert "Too many attempts. Try again in 60 minutes." in refused.text


def test_the_api_verification_email_is_limited_per_account_with_retry_after(
    client: TestClient, db: Session, org: Organization
) -> None:
    user = factories.make_user(db, org)
    user.email_verified_at = None
    db.flush()
    headers = {"Authorization": f"Bearer {factories.make_api_key(db, org)}"}
    url = f"/api/v1/users/{user.id}/verification-email"
    for _ in range(throttle.VERIFICATION_PER_ACCOUNT.max_hits):
        assert client.post(url, headers=headers).status_code == 202
    refused = client.post(url, headers=headers)
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert 3590 < int(refused.headers["retry-after"]) <= 3600
    body = refused.json()
    assert body["code"] == "auth.rate_limited"
    assert body["detail"] == "Too many attempts. Try again in 60 minutes."
