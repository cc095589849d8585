"""Two-step verification through the portal: setting it up, signing in with it, losing it."""

from __future__ import annotations

import time
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests import factories
from tests.api.test_impersonation import csrf_of, link_for, use_link
from tests.test_cli import app, database_url, run, runner  # noqa: F401 - the fixture
from userdesk.audit.models import AuditEvent
from userdesk.db.session import Database
from userdesk.organizations.models import Organization
from userdesk.two_step import rules
from userdesk.two_step.models import TwoStepFactor
from userdesk.users.models import User


def _field(html: str, name: str) -> str:
    return html.split(f'name="{name}" value="', 1)[1].split('"', 1)[0]


def _code(secret: str, offset: int = 0) -> str:
    return rules.code_at(secret, rules.step_of(time.time()) + offset)


def enroll(client: TestClient, csrf: str) -> tuple[str, list[str]]:
    """Turn two-step on for the signed-in person; returns the secret and recovery codes."""
    assert client.post("/me/two-step/begin", data={"csrf_token": csrf}).status_code == 303
    page = client.get("/me/two-step").text
    secret = page.split('data-testid="two-step-secret">', 1)[1].split("<", 1)[0]
    done = client.post(
        "/me/two-step/confirm",
        data={
            "csrf_token": csrf,
            "code": _code(secret),
            "current_password": factories.PASSWORD,
        },
    )
    assert done.status_code == 200, done.text
    listed = done.text.split('data-testid="recovery-codes">', 1)[1].split("</ul>", 1)[0]
    codes = [item.split("</li>", 1)[0] for item in listed.split("<li>")[1:]]
    return secret, codes


def password_step(client: TestClient, email: str) -> str:
    """Sign in with the password; returns the second step's page."""
    client.cookies.clear()
    page = client.get("/login").text
    answer = client.post(
        "/login",
        data={
            "email": email,
            "password": factories.PASSWORD,
            "csrf_token": _field(page, "csrf_token"),
        },
    )
    assert answer.status_code == 200, answer.text
    assert "Two-step verification" in answer.text
    return answer.text


def second_step(client: TestClient, page: str, code: str) -> int:
    return client.post(
        "/login/two-step",
        data={
            "csrf_token": _field(page, "csrf_token"),
            "challenge": _field(page, "challenge"),
            "code": code,
        },
    ).status_code


def test_setting_up_needs_a_right_code_and_the_password_then_shows_recovery_codes_once(
    client: TestClient, db: Session, org: Organization
) -> None:
    user = factories.make_user(db, org)
    csrf = factories.login(client, user.email)
    assert 'data-testid="two-step-state">Off' in client.get("/me").text
    client.post("/me/two-step/begin", data={"csrf_token": csrf})
    page = client.get("/me/two-step").text
    secret = page.split('data-testid="two-step-secret">', 1)[1].split("<", 1)[0]
    assert "<svg" in page  # the QR code, drawn on the server
    wrong = client.post(
        "/me/two-step/confirm",
        data={"csrf_token": csrf, "code": "000000", "current_password": factories.PASSWORD},
    )
    assert wrong.status_code == 400
    assert "The code is not the code" in wrong.text
    no_password = client.post(
        "/me/two-step/confirm",
        data={"csrf_token": csrf, "code": _code(secret), "current_password": "nope"},
    )
    assert no_password.status_code == 400
    stored = db.scalar(select(TwoStepFactor).where(TwoStepFactor.user_id == user.id))
    assert stored is not None
    assert stored.enabled_at is None
    assert secret not in stored.secret_encrypted  # kept encrypted
    done = client.post(
        "/me/two-step/confirm",
        data={"csrf_token": csrf, "code": _code(secret), "current_password": factories.PASSWORD},
    )
    assert done.status_code == 200
    assert done.text.count("<li>") >= rules.RECOVERY_CODES
    assert "no-store" in done.headers.get("cache-control", "")
    me = client.get("/me").text
    assert 'data-testid="two-step-state">On' in me
    assert f"{rules.RECOVERY_CODES} recovery codes left" in me
    assert secret not in me
    actions = db.scalars(
        select(AuditEvent.action).where(AuditEvent.target_id == str(user.id))
    ).all()
    assert "user.two_step_enabled" in actions


def test_the_password_alone_no_longer_signs_in_and_a_code_works_once(
    client: TestClient, db: Session, org: Organization
) -> None:
    user = factories.make_user(db, org)
    secret, _ = enroll(client, factories.login(client, user.email))
    page = password_step(client, user.email)
    assert client.get("/me").status_code in (303, 401)  # no session yet
    code = _code(secret, 1)  # the current step's code was used to set it up
    assert second_step(client, page, "123") == 400
    assert second_step(client, page, code) == 303
    assert client.get("/me").status_code == 200
    assert client.cookies.get("userdesk_device")  # this browser is now the owner's
    again = password_step(client, user.email)
    assert second_step(client, again, code) == 400  # the same code does not work twice


def test_a_recovery_code_signs_in_once(client: TestClient, db: Session, org: Organization) -> None:
    user = factories.make_user(db, org)
    _, codes = enroll(client, factories.login(client, user.email))
    page = password_step(client, user.email)
    assert second_step(client, page, codes[0].lower().replace("-", " ")) == 303
    again = password_step(client, user.email)
    assert second_step(client, again, codes[0]) == 400
    assert second_step(client, again, codes[1]) == 303


def test_wrong_codes_lock_the_second_step_even_for_the_right_code(
    client: TestClient, db: Session, org: Organization
) -> None:
    user = factories.make_user(db, org)
    secret, _ = enroll(client, factories.login(client, user.email))
    page = password_step(client, user.email)
    for _ in range(5):
        assert second_step(client, page, "000000") == 400
    assert second_step(client, page, _code(secret, 1)) == 429


def test_a_challenge_is_bound_to_its_sign_in_and_dies_when_used(
    client: TestClient, db: Session, org: Organization
) -> None:
    user = factories.make_user(db, org)
    secret, _ = enroll(client, factories.login(client, user.email))
    page = password_step(client, user.email)
    forged = page.replace(_field(page, "challenge"), "x" * 43)
    assert second_step(client, forged, _code(secret, 1)) == 401
    assert second_step(client, page, _code(secret, 1)) == 303
    assert second_step(client, page, _code(secret, 1)) == 401  # used


def test_turning_it_off_takes_the_password(
    client: TestClient, db: Session, org: Organization
) -> None:
    user = factories.make_user(db, org)
    csrf = factories.login(client, user.email)
    enroll(client, csrf)
    refused = client.post(
        "/me/two-step/disable", data={"csrf_token": csrf, "current_password": "wrong"}
    )
    assert refused.status_code == 400
    off = client.post(
        "/me/two-step/disable", data={"csrf_token": csrf, "current_password": factories.PASSWORD}
    )
    assert off.status_code == 303
    client.cookies.clear()
    factories.login(client, user.email)  # the password alone again


def test_an_organization_can_require_it_of_back_office_users(
    client: TestClient, db: Session, org: Organization
) -> None:
    admin = factories.make_admin(db, org)
    member = factories.make_user(db, org)
    csrf = factories.login(client, admin.email)
    saved = client.post(
        "/console/settings",
        data={"invitation_ttl_days": "7", "two_step_required": "true", "csrf_token": csrf},
    )
    assert saved.status_code == 303
    changed = db.scalars(
        select(AuditEvent.changes).where(AuditEvent.action == "organization.settings_changed")
    ).all()
    assert any(c.get("two_step_required_for_console") is True for c in changed)
    blocked = client.get("/console/users")
    assert blocked.status_code == 303
    assert blocked.headers["location"].startswith("/me")
    assert client.get("/api/v1/users", headers={"X-CSRF-Token": csrf}).status_code == 403
    enroll(client, csrf)
    assert client.get("/console/users").status_code == 200
    refused = client.post(
        "/me/two-step/disable", data={"csrf_token": csrf, "current_password": factories.PASSWORD}
    )
    assert refused.status_code == 403
    client.cookies.clear()
    factories.login(client, member.email)  # an end user is not asked
    assert client.get("/me").status_code == 200


def test_an_admin_resets_a_lost_second_step_but_not_a_stronger_users(
    client: TestClient, db: Session, org: Organization
) -> None:
    user = factories.make_user(db, org)
    other_admin = factories.make_admin(db, org)
    enroll(client, factories.login(client, user.email))
    client.cookies.clear()
    enroll(client, factories.login(client, other_admin.email))
    key = factories.make_api_key(db, org)
    auth = {"Authorization": f"Bearer {key}"}
    assert client.post(f"/api/v1/users/{user.id}/two-step/reset", headers=auth).status_code == 200
    assert db.scalar(select(TwoStepFactor).where(TwoStepFactor.user_id == user.id)) is None
    assert client.post(f"/api/v1/users/{user.id}/two-step/reset", headers=auth).status_code == 409
    agent_key = factories.make_api_key(db, org, "Agent")
    for headers in (auth, {"Authorization": f"Bearer {agent_key}"}):
        refused = client.post(f"/api/v1/users/{other_admin.id}/two-step/reset", headers=headers)
        assert refused.status_code == 403  # an Administrator's is reset by nobody but the operator
    assert db.scalar(select(TwoStepFactor).where(TwoStepFactor.user_id == other_admin.id))
    events = db.scalars(select(AuditEvent.action).where(AuditEvent.target_id == str(user.id)))
    assert "user.two_step_reset" in set(events)
    db.expire_all()
    assert db.get(User, user.id) is not None


def test_an_impersonating_admin_cannot_touch_it(
    client: TestClient, db: Session, org: Organization
) -> None:
    admin = factories.make_admin(db, org)
    user = factories.make_user(db, org)
    url = link_for(client, factories.login(client, admin.email), user)
    client.cookies.clear()
    assert use_link(client, url) == 303
    refused = client.post("/me/two-step/begin", data={"csrf_token": csrf_of(client)})
    assert refused.status_code == 403
    assert db.scalar(select(TwoStepFactor).where(TwoStepFactor.user_id == user.id)) is None


def test_the_operator_resets_an_administrators_second_step(
    database_url: str,  # noqa: F811 - the fixture of tests/test_cli.py
    tmp_path: Path,
) -> None:
    """An Administrator who lost their phone is helped by the operator, not by a peer."""
    run("migrate")
    run("create-admin", "--email", "ops@example.com", "--password", "long enough pw")
    database = Database.from_url(database_url)
    with database.unit_of_work() as db:
        admin = db.scalars(select(User)).one()
        db.add(
            TwoStepFactor(
                organization_id=admin.organization_id,
                user_id=admin.id,
                secret_encrypted="v1:unused",
                enabled_at=admin.created_at,
            )
        )
    assert "Two-step verification is off for ops@example.com" in run(
        "two-step", "reset", "--email", "ops@example.com"
    )
    with database.unit_of_work() as db:
        assert db.scalar(select(TwoStepFactor)) is None
    unknown = runner.invoke(app, ["two-step", "reset", "--email", "nobody@example.com"])
    assert unknown.exit_code == 1
    assert "nobody@example.com" in unknown.output
    database.dispose()


def test_the_console_offers_the_reset_on_the_users_page(
    client: TestClient, db: Session, org: Organization
) -> None:
    user = factories.make_user(db, org)
    admin = factories.make_admin(db, org)
    enroll(client, factories.login(client, user.email))
    client.cookies.clear()
    csrf = factories.login(client, admin.email)
    page = client.get(f"/console/users/{user.id}").text
    assert "Reset two-step verification" in page
    own = client.get(f"/console/users/{admin.id}").text
    assert "Reset two-step verification" not in own.split('data-testid="user-actions"', 1)[1]
    done = client.post(f"/console/users/{user.id}/two-step/reset", data={"csrf_token": csrf})
    assert done.status_code == 303
    toast = f"Reset two-step verification for {user.first_name} {user.last_name}".strip()
    assert toast in client.get(done.headers["location"]).text
    again = client.post(f"/console/users/{user.id}/two-step/reset", data={"csrf_token": csrf})
    assert again.status_code == 409


def test_bad_input_to_the_second_step_is_a_4xx_and_signs_nobody_in(
    client: TestClient, db: Session, org: Organization
) -> None:
    user = factories.make_user(db, org)
    csrf = factories.login(client, user.email)
    enroll(client, csrf)
    page = password_step(client, user.email)
    wide = "".join(chr(0xFF11 + i) for i in range(6))  # full-width digits
    for code in ("", "1" * 100_000, "12\x0034", wide):
        assert 400 <= second_step(client, page, code) < 500, repr(code[:10])
    no_challenge = client.post(
        "/login/two-step", data={"csrf_token": _field(page, "csrf_token"), "code": "123456"}
    )
    assert no_challenge.status_code == 401
    stale_form = client.post(
        "/login/two-step", data={"challenge": _field(page, "challenge"), "code": "123456"}
    )
    assert stale_form.status_code == 403
    assert client.get("/me").status_code == 303  # still nobody signed in
    csrf = factories.login(client, factories.make_user(db, org).email)
    client.post("/me/two-step/begin", data={"csrf_token": csrf})
    huge = client.post(
        "/me/two-step/confirm",
        data={"csrf_token": csrf, "code": "9" * 100_000, "current_password": factories.PASSWORD},
    )
    assert huge.status_code == 400


def test_the_console_reset_is_refused_out_of_reach_and_without_the_permission(
    client: TestClient, db: Session, org: Organization
) -> None:
    team, other = factories.make_team(db, org, "Mine"), factories.make_team(db, org, "Theirs")
    user = factories.make_user(db, org, team=other)
    enroll(client, factories.login(client, user.email))
    for role, teamed in (("Team Administrator", team), ("Agent", None)):
        client.cookies.clear()
        actor = factories.make_user(db, org, team=teamed, roles=(role,))
        csrf = factories.login(client, actor.email)
        refused = client.post(f"/console/users/{user.id}/two-step/reset", data={"csrf_token": csrf})
        assert refused.status_code in (403, 404), role
    assert db.scalar(select(TwoStepFactor).where(TwoStepFactor.user_id == user.id))
