"""Failed sign-ins lock out the client that made them, not the account's owner.

Failures count per account and client: a browser with a device cookie for the account (it
signed in to it before), else the IP. A stranger failing someone's password locks out the
stranger; strangers at many addresses together lock out browsers without a device cookie;
the owner's own browser still gets in (OWASP's device cookies).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests import factories
from tests.conftest import BoundDatabase
from userdesk.activity.models import ActivityEvent
from userdesk.auth import device_cookies, rules, throttle
from userdesk.auth.signin import INVALID_CREDENTIALS
from userdesk.config import Settings
from userdesk.db.base import utcnow
from userdesk.organizations.models import Organization
from userdesk.users.models import User
from userdesk.web.app import create_app

WRONG = "not the password at all"
STRANGER = "203.0.113.66"
OWNER = "198.51.100.7"


@pytest.fixture
def browsers(app: FastAPI) -> Iterator[dict[str, TestClient]]:
    """A browser per name, each with an IP of its own; `fresh@IP` gives another at IP."""
    made: dict[str, TestClient] = {}

    class Browsers(dict[str, TestClient]):
        def __missing__(self, name: str) -> TestClient:
            ip = name.split("@", 1)[1] if "@" in name else name
            client = TestClient(app, follow_redirects=False, client=(ip, 40000))
            made[name] = self[name] = client
            return client

    yield Browsers()
    for client in made.values():
        client.close()


def post_login(client: TestClient, email: str, password: str):  # type: ignore[no-untyped-def]
    page = client.get("/login")
    token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    return client.post("/login", data={"email": email, "password": password, "csrf_token": token})


def error_of(page: str) -> str:
    return page.split('data-testid="login-error">', 1)[1].split("<", 1)[0]


def signed_in_once(client: TestClient, user: User) -> None:
    """The owner signs in from CLIENT (which gets its device cookie), then signs out."""
    assert post_login(client, user.email, factories.PASSWORD).status_code == 303
    assert device_cookies.COOKIE in client.cookies
    client.cookies.delete("userdesk_session")


def test_a_stranger_failing_the_password_does_not_lock_the_owner_out_of_their_browser(
    browsers: dict[str, TestClient], db: Session, org: Organization
) -> None:
    """Even from the stranger's own address (a shared network), the owner's browser, which
    signed in before, signs in after the stranger's failures locked the stranger out."""
    user = factories.make_user(db, org)
    owner = browsers[f"owner@{STRANGER}"]
    signed_in_once(owner, user)
    stranger = browsers[STRANGER]
    for _ in range(rules.LOCK_AFTER + 3):
        assert post_login(stranger, user.email, WRONG).status_code == 401
    assert post_login(stranger, user.email, factories.PASSWORD).status_code == 401
    assert post_login(owner, user.email, factories.PASSWORD).status_code == 303


def test_a_stranger_failing_the_password_does_not_lock_out_other_addresses(
    browsers: dict[str, TestClient], db: Session, org: Organization
) -> None:
    """The owner on a browser that never signed in, at another address, still gets in."""
    user = factories.make_user(db, org)
    for _ in range(rules.LOCK_AFTER + 3):
        assert post_login(browsers[STRANGER], user.email, WRONG).status_code == 401
    assert post_login(browsers[OWNER], user.email, factories.PASSWORD).status_code == 303


def test_the_stranger_is_locked_out_and_the_right_password_then_answers_as_a_wrong_one(
    browsers: dict[str, TestClient], db: Session, org: Organization
) -> None:
    user = factories.make_user(db, org)
    stranger = browsers[STRANGER]
    for _ in range(rules.LOCK_AFTER):
        post_login(stranger, user.email, WRONG)
    locked = post_login(stranger, user.email, factories.PASSWORD)
    assert locked.status_code == 401
    assert error_of(locked.text) == INVALID_CREDENTIALS
    assert "userdesk_session" not in locked.headers.get("set-cookie", "")


def test_guessing_from_many_addresses_locks_out_new_browsers_but_not_the_owners(
    browsers: dict[str, TestClient], db: Session, org: Organization
) -> None:
    """Failures from every address without a device cookie add up: past the account's cap
    a browser that never signed in is refused even with the right password, while the
    owner's browser gets in; and each address stayed under its own lock-out."""
    user = factories.make_user(db, org)
    owner = browsers[OWNER]
    signed_in_once(owner, user)
    per_address = rules.LOCK_AFTER - 1
    addresses = -(-rules.UNTRUSTED_LOCK_AFTER // per_address)
    for n in range(addresses):
        for _ in range(per_address):
            assert post_login(browsers[f"192.0.2.{n + 1}"], user.email, WRONG).status_code == 401
    newcomer = browsers["192.0.2.200"]
    assert post_login(newcomer, user.email, factories.PASSWORD).status_code == 401
    assert post_login(owner, user.email, factories.PASSWORD).status_code == 303
    locks = db.scalars(
        select(ActivityEvent).where(
            ActivityEvent.user_id == user.id, ActivityEvent.type == "sign_in_locked"
        )
    ).all()
    assert [e.properties["locked_out"] for e in locks] == ["every new browser"]


def test_the_owners_browser_has_its_own_allowance(
    browsers: dict[str, TestClient], db: Session, org: Organization
) -> None:
    """Failures from the owner's browser lock out that browser, as any client's do."""
    user = factories.make_user(db, org)
    owner = browsers[OWNER]
    signed_in_once(owner, user)
    for _ in range(rules.LOCK_AFTER):
        assert post_login(owner, user.email, WRONG).status_code == 401
    assert post_login(owner, user.email, factories.PASSWORD).status_code == 401
    assert post_login(browsers["192.0.2.9"], user.email, factories.PASSWORD).status_code == 303


@pytest.mark.parametrize("how", ["tampered", "other account", "other key", "garbage"])
def test_an_altered_or_foreign_device_cookie_counts_as_none(
    browsers: dict[str, TestClient],
    db: Session,
    org: Organization,
    settings: Settings,
    how: str,
) -> None:
    user = factories.make_user(db, org)
    other = factories.make_user(db, org)
    owner = browsers[f"owner@{STRANGER}"]
    signed_in_once(owner, user)
    good = owner.cookies[device_cookies.COOKIE]
    now = utcnow()
    forged = {
        "tampered": good[:-2] + ("AA" if not good.endswith("AA") else "BB"),
        "other account": device_cookies.remember(settings.secret_key, None, other.id, now=now),
        "other key": device_cookies.remember("another secret", None, user.id, now=now),
        "garbage": "x" * 5000,
    }[how]
    owner.cookies.delete(device_cookies.COOKIE)
    owner.cookies.set(device_cookies.COOKIE, forged)
    for _ in range(rules.LOCK_AFTER):
        post_login(browsers[STRANGER], user.email, WRONG)
    assert post_login(owner, user.email, factories.PASSWORD).status_code == 401


def test_a_stranger_using_up_the_attempts_for_an_email_does_not_stop_the_owner(
    browsers: dict[str, TestClient], db: Session, org: Organization
) -> None:
    """The per-email limit counts per client too: the stranger gets 429, the owner, at
    another address, signs in."""
    user = factories.make_user(db, org)
    stranger = browsers[STRANGER]
    for _ in range(throttle.SIGN_IN_PER_EMAIL.max_hits):
        post_login(stranger, user.email, WRONG)
    assert post_login(stranger, user.email, WRONG).status_code == 429
    assert post_login(browsers[OWNER], user.email, factories.PASSWORD).status_code == 303


def test_the_device_cookie_is_http_only_strict_and_long_lived(
    browsers: dict[str, TestClient], db: Session, org: Organization
) -> None:
    user = factories.make_user(db, org)
    answer = post_login(browsers[OWNER], user.email, factories.PASSWORD)
    (cookie,) = [
        c for c in answer.headers.get_list("set-cookie") if c.startswith("userdesk_device=")
    ]
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "path", "max-age"} <= attributes
    assert "samesite=strict" in cookie.lower()
    assert f"max-age={365 * 24 * 3600}" in cookie.lower()
    assert "secure" not in attributes  # plain http in tests


def test_over_https_the_device_cookie_is_host_prefixed_and_secure(
    settings: Settings, database: BoundDatabase, db: Session, org: Organization
) -> None:
    user = factories.make_user(db, org)
    https = dataclasses.replace(settings, base_url="https://userdesk.example")
    with TestClient(
        create_app(https, database), base_url="https://userdesk.example", follow_redirects=False
    ) as client:
        answer = post_login(client, user.email, factories.PASSWORD)
    assert answer.status_code == 303
    (cookie,) = [
        c for c in answer.headers.get_list("set-cookie") if c.startswith("__Host-userdesk_device=")
    ]
    assert "secure" in cookie.lower()
    assert "domain" not in cookie.lower()
