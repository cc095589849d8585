"""Rate-limited answers say where the client stands: RateLimit-Policy and RateLimit
(draft-ietf-httpapi-ratelimit-headers-11), on a success as on a 429."""

from __future__ import annotations

import re

import httpx
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests import factories
from userdesk.access.rules import system_actor
from userdesk.auth import throttle
from userdesk.organizations import service as organizations
from userdesk.organizations.models import Organization

WRONG = "not the password at all"
ITEM = re.compile(r'^"([a-z.]+)";([a-z]+)=(\d+);([a-z]+)=(\d+)$')


def parsed(header: str) -> dict[str, dict[str, int]]:
    """A structured-field list of `"name";a=1;b=2` items, by name."""
    items = {}
    for item in header.split(", "):
        match = ITEM.match(item)
        assert match, header
        name, k1, v1, k2, v2 = match.groups()
        items[name] = {k1: int(v1), k2: int(v2)}
    return items


def limits(response: httpx.Response) -> tuple[dict[str, dict[str, int]], dict[str, dict[str, int]]]:
    return parsed(response.headers["ratelimit-policy"]), parsed(response.headers["ratelimit"])


def form_token(client: TestClient, path: str) -> str:
    page = client.get(path)
    return page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]


def post_login(client: TestClient, email: str, password: str) -> httpx.Response:
    token = form_token(client, "/login")
    return client.post("/login", data={"email": email, "password": password, "csrf_token": token})


def test_a_sign_in_says_what_is_left_of_each_limit(
    client: TestClient, db: Session, org: Organization
) -> None:
    user = factories.make_user(db, org)
    failed = post_login(client, user.email, WRONG)
    assert failed.status_code == 401
    policy, left = limits(failed)
    assert policy == {"signin.ip": {"q": 50, "w": 600}, "signin.email": {"q": 10, "w": 600}}
    assert left["signin.ip"]["r"] == 49
    assert left["signin.email"] == {"r": 9, "t": 600}
    signed_in = post_login(client, user.email, factories.PASSWORD)
    assert signed_in.status_code == 303
    policy, left = limits(signed_in)
    assert set(policy) == {"signin.ip", "signin.email"}  # not the count others add to
    assert left["signin.ip"]["r"] == 48
    assert left["signin.email"]["r"] == 8
    assert 0 < left["signin.email"]["t"] <= 600


def test_a_refusal_says_nothing_is_left_and_when_to_come_back(
    client: TestClient, db: Session, org: Organization
) -> None:
    for _ in range(throttle.SIGN_IN_PER_EMAIL.max_hits):
        post_login(client, "nobody-here@example.com", WRONG)
    refused = post_login(client, "nobody-here@example.com", WRONG)
    assert refused.status_code == 429
    _, left = limits(refused)
    assert left["signin.email"]["r"] == 0
    assert left["signin.email"]["t"] == int(refused.headers["retry-after"])


def test_a_password_reset_says_its_limit_per_address_not_the_count_for_the_email(
    client: TestClient,
) -> None:
    token = form_token(client, "/password/forgot")
    answer = client.post("/password/forgot", data={"email": "a@example.com", "csrf_token": token})
    assert answer.status_code == 200
    policy, left = limits(answer)
    assert policy == {"reset.ip": {"q": 10, "w": 3600}}
    assert left["reset.ip"]["r"] == 9
    for _ in range(throttle.PASSWORD_RESET_PER_EMAIL.max_hits - 1):
        client.post("/password/forgot", data={"email": "a@example.com", "csrf_token": token})
    refused = client.post("/password/forgot", data={"email": "a@example.com", "csrf_token": token})
    assert refused.status_code == 429
    policy, left = limits(refused)
    assert policy["reset.email"] == {"q": 3, "w": 3600}
    assert left["reset.email"]["r"] == 0
    assert left["reset.email"]["t"] == int(refused.headers["retry-after"])


def test_a_registration_says_its_limit(client: TestClient, db: Session, org: Organization) -> None:
    organizations.update_settings(db, actor=system_actor(org.id), registration="open")  # type: ignore[arg-type]
    token = form_token(client, f"/signup?org={org.slug}")
    data = {"org": org.slug, "email": "new@example.com", "first_name": "N", "csrf_token": token}
    answer = client.post("/signup", data=data)
    assert answer.status_code == 200
    policy, left = limits(answer)
    assert policy == {"signup.ip": {"q": 10, "w": 3600}}
    assert left["signup.ip"]["r"] == 9


def test_verification_emails_say_their_limits_in_the_portal_and_the_api(
    client: TestClient, db: Session, org: Organization
) -> None:
    user = factories.make_user(db, org)
    user.email_verified_at = None
    db.flush()
    csrf = factories.login(client, user.email)
    sent = client.post("/me/verification-email", data={"csrf_token": csrf})
    assert sent.status_code == 303
    policy, left = limits(sent)
    assert policy["verify.account"] == {"q": 3, "w": 3600}
    assert left["verify.account"]["r"] == 2
    headers = {"Authorization": f"Bearer {factories.make_api_key(db, org)}"}
    url = f"/api/v1/users/{user.id}/verification-email"
    assert limits(client.post(url, headers=headers))[1]["verify.account"]["r"] == 1
    client.post(url, headers=headers)
    refused = client.post(url, headers=headers)
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert limits(refused)[1]["verify.account"]["r"] == 0


def test_answers_that_met_no_limit_carry_no_ratelimit_headers(
    client: TestClient, db: Session, org: Organization
) -> None:
    headers = {"Authorization": f"Bearer {factories.make_api_key(db, org)}"}
    for response in (client.get("/login"), client.get("/api/v1/users", headers=headers)):
        assert "ratelimit" not in response.headers
        assert "ratelimit-policy" not in response.headers
