"""Users brought with their password hashes (POST /api/v1/users, the batch endpoint, the
CSV import): they sign in with the password they had, which is then re-hashed with our
argon2id in the same transaction; bad hashes are refused by row or item with the reason;
the hash never shows in API reads, exports, audit rows or webhook payloads; the
organization's settings (salted SHA-2, Firebase's parameters) are an admin's, and the
Firebase signer key is never shown back."""

from __future__ import annotations

import base64
import dataclasses
import json
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests import factories
from tests.api.test_import import run_jobs
from tests.auth.test_imported_hashes import (
    BCRYPT_2B,
    DJANGO_SHA256,
    FIREBASE_HASH,
    SHA256,
)
from tests.conftest import BoundDatabase
from tests.webhooks.conftest import make_endpoint
from userdesk.access.rules import Actor, system_actor
from userdesk.audit.models import AuditEvent
from userdesk.auth import password_imports, signin
from userdesk.auth.secrets import verify_password
from userdesk.config import Settings
from userdesk.errors import NotAuthenticated, PermissionDenied
from userdesk.invitations.models import Invitation
from userdesk.organizations.models import Organization
from userdesk.users.models import User
from userdesk.webhooks.models import WebhookMessage

USERS = "/api/v1/users"
FIREBASE_KEY = (
    "jxspr8Ki0RYycVU8zykbdLGjFQ3McFUH0uiiTvC8pVMXAn210wjLNmdZJzxUECKbm0QsEmYUSDzZvpjeJ9WmXA=="
)
BAD_COST = "$2b$31$" + "a" * 53


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def admin(org: Organization) -> Actor:
    return system_actor(org.id, "tests")


def user_by_email(db: Session, email: str) -> User:
    return db.scalars(select(User).where(User.email_normalized == email.lower())).one()


def audit_text(db: Session, org: Organization) -> str:
    rows = db.scalars(select(AuditEvent).where(AuditEvent.organization_id == org.id)).all()
    return json.dumps([[r.action, r.changes, r.reason] for r in rows])


def set_firebase(db: Session, org: Organization, settings: Settings) -> None:
    password_imports.update_settings(
        db,
        actor=admin(org),
        settings=settings,
        firebase_signer_key=FIREBASE_KEY,
        firebase_salt_separator="Bw==",
        firebase_rounds=8,
        firebase_mem_cost=14,
    )


def sign_in(db: Session, settings: Settings, email: str, password: str) -> Any:
    return signin.sign_in(db, settings=settings, email=email, password=password)


# --- POST /api/v1/users and sign-in ---------------------------------------------------


def test_a_user_created_with_a_bcrypt_hash_signs_in_and_is_rehashed_with_argon2id(
    client: TestClient, db: Session, org: Organization, settings: Settings
) -> None:
    key = factories.make_api_key(db, org)
    stored, password = BCRYPT_2B
    response = client.post(
        USERS, json={"email": "bea@example.com", "password_hash": stored}, headers=bearer(key)
    )
    assert response.status_code == 201, response.text
    assert stored not in response.text
    assert "password_hash" not in response.json()
    bea = user_by_email(db, "bea@example.com")
    assert bea.password_hash == stored
    with pytest.raises(NotAuthenticated):
        sign_in(db, settings, "bea@example.com", password + "!")
    assert user_by_email(db, "bea@example.com").password_hash == stored  # a failure keeps it
    signed = sign_in(db, settings, "bea@example.com", password)
    assert signed.user.id == bea.id
    db.refresh(bea)
    assert bea.password_hash is not None
    assert bea.password_hash.startswith("$argon2id$")
    assert verify_password(bea.password_hash, password)
    assert not verify_password(bea.password_hash, password + "!")
    event = db.scalars(
        select(AuditEvent).where(
            AuditEvent.action == "user.password_rehashed", AuditEvent.target_id == str(bea.id)
        )
    ).one()
    assert event.changes == {"password": {"from": "imported (bcrypt)", "to": "argon2id"}}
    assert stored not in audit_text(db, org)
    sign_in(db, settings, "bea@example.com", password)  # and again, on argon2id now
    assert (
        len(
            db.scalars(
                select(AuditEvent).where(AuditEvent.action == "user.password_rehashed")
            ).all()
        )
        == 1
    )


def test_the_security_log_tells_of_the_rehash_without_the_hash(
    client: TestClient,
    db: Session,
    org: Organization,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    key = factories.make_api_key(db, org)
    stored, password = DJANGO_SHA256
    client.post(
        USERS, json={"email": "dj@example.com", "password_hash": stored}, headers=bearer(key)
    )
    with caplog.at_level("INFO", logger="userdesk.security"):
        sign_in(db, settings, "dj@example.com", password)
    assert '"password_rehashed"' in caplog.text
    assert "Django PBKDF2" in caplog.text
    assert stored not in caplog.text
    assert stored.split("$")[3] not in caplog.text
    assert user_by_email(db, "dj@example.com").password_hash.startswith("$argon2id$")  # type: ignore[union-attr]


def test_a_pending_user_with_a_hash_cannot_sign_in_until_activated(
    client: TestClient, db: Session, org: Organization, settings: Settings
) -> None:
    key = factories.make_api_key(db, org)
    stored, password = BCRYPT_2B
    response = client.post(
        USERS,
        json={"email": "pat@example.com", "password_hash": stored, "status": "pending"},
        headers=bearer(key),
    )
    assert response.status_code == 201, response.text
    with pytest.raises(NotAuthenticated, match="not activated"):
        sign_in(db, settings, "pat@example.com", password)
    assert user_by_email(db, "pat@example.com").password_hash == stored


@pytest.mark.parametrize(
    ("stored", "reason"),
    [
        (BAD_COST, "cost 31"),
        ("hunter2", "not a password hash in a known format"),
        ("pbkdf2_sha256$9000000$salt$" + "A" * 44, "9,000,000 iterations"),
        (SHA256[0], "weak"),
        (FIREBASE_HASH[0], "no Firebase hash parameters"),
        ("$2b$10$" + "a" * 52 + "\0", "NUL"),
        ("x" * 100_000, "longer than 255"),
    ],
)
def test_a_bad_hash_is_a_400_naming_the_field_never_echoing_it(
    client: TestClient, db: Session, org: Organization, stored: str, reason: str
) -> None:
    key = factories.make_api_key(db, org)
    response = client.post(
        USERS, json={"email": "bad@example.com", "password_hash": stored}, headers=bearer(key)
    )
    assert response.status_code == 400, response.text
    assert reason in response.text
    assert "password_hash" in response.text
    if len(stored) > 12:
        assert stored.replace("\0", "\\u0000") not in response.text
        assert stored not in response.text
    assert db.scalar(select(User).where(User.email == "bad@example.com")) is None


def test_only_an_actor_who_may_create_users_sets_a_hash(
    client: TestClient, db: Session, org: Organization
) -> None:
    agent = factories.make_api_key(db, org, "Agent")
    body = {"email": "sneak@example.com", "password_hash": BCRYPT_2B[0]}
    assert client.post(USERS, json=body, headers=bearer(agent)).status_code == 403
    batch = {"users": [body]}
    assert client.post(f"{USERS}/batch", json=batch, headers=bearer(agent)).status_code == 403
    assert db.scalar(select(User).where(User.email == "sneak@example.com")) is None


def test_a_hash_is_never_set_on_an_existing_user(
    client: TestClient, db: Session, org: Organization, settings: Settings
) -> None:
    """Creating is idempotent on the email, so a hash sent for someone who exists must not
    replace their password: that would hand the account to whoever sent it."""
    victim = factories.make_user(db, org, email="victim@example.com", status="pending")
    before = victim.password_hash
    key = factories.make_api_key(db, org)
    body = {"email": "victim@example.com", "password_hash": BCRYPT_2B[0], "status": "pending"}
    assert client.post(USERS, json=body, headers=bearer(key)).status_code == 200
    answer = client.post(f"{USERS}/batch", json={"users": [body]}, headers=bearer(key)).json()
    assert answer["items"][0]["status"] == "unchanged"
    db.refresh(victim)
    assert victim.password_hash == before
    active = factories.make_user(db, org, email="active@example.com")
    body = {"email": "active@example.com", "password_hash": BCRYPT_2B[0]}
    assert client.post(USERS, json=body, headers=bearer(key)).status_code == 409
    db.refresh(active)
    assert not verify_password(active.password_hash, BCRYPT_2B[1])


# --- the batch endpoint ----------------------------------------------------------------


def test_the_batch_takes_hashes_and_refuses_bad_ones_by_index(
    client: TestClient, db: Session, org: Organization, settings: Settings
) -> None:
    key = factories.make_api_key(db, org)
    items = [
        {"email": "one@example.com", "password_hash": BCRYPT_2B[0]},
        {"email": "two@example.com", "password_hash": BAD_COST},
        {"email": "three@example.com"},
        {"email": "four@example.com", "password_hash": "md5:abc"},
        {"email": "five@example.com", "password_hash": DJANGO_SHA256[0]},
    ]
    response = client.post(f"{USERS}/batch", json={"users": items}, headers=bearer(key))
    assert response.status_code == 200, response.text
    answer = response.json()
    assert [item["status"] for item in answer["items"]] == [
        "created",
        "error",
        "created",
        "error",
        "created",
    ]
    assert answer["items"][1]["error"]["field"] == "password_hash"
    assert "cost 31" in answer["items"][1]["error"]["message"]
    assert answer["items"][3]["error"]["field"] == "password_hash"
    assert BAD_COST not in response.text
    assert user_by_email(db, "three@example.com").password_hash is None
    sign_in(db, settings, "one@example.com", BCRYPT_2B[1])
    sign_in(db, settings, "five@example.com", DJANGO_SHA256[1])
    assert user_by_email(db, "one@example.com").password_hash.startswith("$argon2")  # type: ignore[union-attr]
    assert BCRYPT_2B[0] not in audit_text(db, org)
    assert DJANGO_SHA256[0] not in audit_text(db, org)


# --- settings: salted SHA-2 and Firebase ------------------------------------------------


def test_salted_sha_is_taken_only_once_the_organization_allows_it(
    client: TestClient, db: Session, org: Organization, settings: Settings
) -> None:
    key = factories.make_api_key(db, org)
    body = {"email": "sha@example.com", "password_hash": SHA256[0]}
    refused = client.post(USERS, json=body, headers=bearer(key))
    assert refused.status_code == 400
    assert "weak" in refused.text
    password_imports.update_settings(db, actor=admin(org), settings=settings, allow_salted_sha=True)
    assert client.post(USERS, json=body, headers=bearer(key)).status_code == 201
    sign_in(db, settings, "sha@example.com", SHA256[1])
    assert user_by_email(db, "sha@example.com").password_hash.startswith("$argon2id$")  # type: ignore[union-attr]


def test_a_firebase_user_signs_in_with_firebases_published_example(
    client: TestClient, db: Session, org: Organization, settings: Settings
) -> None:
    set_firebase(db, org, settings)
    stored, password = FIREBASE_HASH
    key = factories.make_api_key(db, org)
    body = {"email": "user1@test.com", "password_hash": stored}
    assert client.post(USERS, json=body, headers=bearer(key)).status_code == 201
    with pytest.raises(NotAuthenticated):
        sign_in(db, settings, "user1@test.com", "user1passwor")
    sign_in(db, settings, "user1@test.com", password)
    assert user_by_email(db, "user1@test.com").password_hash.startswith("$argon2id$")  # type: ignore[union-attr]


def test_the_firebase_signer_key_is_sealed_and_never_shown_back(
    client: TestClient, db: Session, org: Organization, settings: Settings
) -> None:
    set_firebase(db, org, settings)
    db.refresh(org)
    assert FIREBASE_KEY not in json.dumps(org.settings)
    assert org.settings[password_imports.FIREBASE]["signer_key"].startswith("v1:")
    assert FIREBASE_KEY not in audit_text(db, org)
    factories.make_admin(db, org, email="boss@example.com")
    factories.login(client, "boss@example.com")
    page = client.get("/console/settings/password-imports")
    assert page.status_code == 200
    assert "Set (never shown)" in page.text
    assert FIREBASE_KEY not in page.text
    assert org.settings[password_imports.FIREBASE]["signer_key"] not in page.text
    # Another organization's sealed key does not open for this one.
    other = factories.make_organization(db)
    copied = {**org.settings[password_imports.FIREBASE]}
    other.settings = {password_imports.FIREBASE: copied}
    db.flush()
    assert password_imports.firebase_params(settings, other) is None
    assert password_imports.firebase_params(settings, org) is not None


def test_the_console_saves_the_settings_and_keeps_a_blank_key(
    client: TestClient, db: Session, org: Organization, settings: Settings
) -> None:
    factories.make_admin(db, org, email="boss@example.com")
    csrf = factories.login(client, "boss@example.com")
    form = {
        "csrf_token": csrf,
        "allow_salted_sha": "true",
        "firebase_signer_key": FIREBASE_KEY,
        "firebase_salt_separator": "Bw==",
        "firebase_rounds": "8",
        "firebase_mem_cost": "14",
    }
    saved = client.post("/console/settings/password-imports", data=form, follow_redirects=False)
    assert saved.status_code == 303, saved.text
    db.refresh(org)
    sealed = org.settings[password_imports.FIREBASE]["signer_key"]
    assert org.settings[password_imports.ALLOW_SALTED_SHA] is True
    again = client.post(
        "/console/settings/password-imports",
        data={**form, "firebase_signer_key": "", "firebase_rounds": "9"},
        follow_redirects=False,
    )
    assert again.status_code == 303
    db.refresh(org)
    assert org.settings[password_imports.FIREBASE]["signer_key"] == sealed
    assert org.settings[password_imports.FIREBASE]["rounds"] == 9
    bad = client.post(
        "/console/settings/password-imports",
        data={**form, "firebase_signer_key": "not base64!", "firebase_mem_cost": "99"},
    )
    assert bad.status_code == 400
    assert "not base64!" not in bad.text
    assert "is not base64" in bad.text
    absurd = client.post(
        "/console/settings/password-imports", data={**form, "firebase_mem_cost": "40"}
    )
    assert absurd.status_code == 400
    assert "mem_cost 40" in absurd.text


def test_only_admins_who_manage_settings_see_or_change_them(
    client: TestClient, db: Session, org: Organization, settings: Settings
) -> None:
    factories.make_user(db, org, email="agent@example.com", roles=("Agent",))
    csrf = factories.login(client, "agent@example.com")
    assert client.get("/console/settings/password-imports").status_code == 403
    response = client.post(
        "/console/settings/password-imports",
        data={"csrf_token": csrf, "allow_salted_sha": "true"},
    )
    assert response.status_code == 403
    db.refresh(org)
    assert not password_imports.allows_salted_sha(org)
    team_admin = system_actor(org.id, "x")
    team_admin = dataclasses.replace(team_admin, grants=())
    with pytest.raises(PermissionDenied):
        password_imports.update_settings(
            db, actor=team_admin, settings=settings, allow_salted_sha=True
        )


# --- the CSV import ---------------------------------------------------------------------

CSV = (
    "Email,First name,Password hash\r\n"
    f"ann@example.com,Ann,{BCRYPT_2B[0]}\r\n"
    f"bob@example.com,Bob,{BAD_COST}\r\n"
    "cy@example.com,Cy,\r\n"
    "di@example.com,Di,not-a-hash\r\n"
    f"ed@example.com,Ed,{SHA256[0]}\r\n"
    f"fay@example.com,Fay,{DJANGO_SHA256[0]}\r\n"
)


def import_csv(client: TestClient, key: str, **form: str) -> dict[str, Any]:
    response = client.post(
        "/api/v1/imports",
        files={"file": ("people.csv", CSV.encode(), "text/csv")},
        data=form,
        headers=bearer(key),
    )
    assert response.status_code == 202, response.text
    return response.json()


def fates(client: TestClient, key: str, job_id: int) -> dict[int, tuple[str, str]]:
    done = client.get(f"/api/v1/jobs/{job_id}", headers=bearer(key))
    return {row["row"]: (row["fate"], row.get("detail", "")) for row in done.json()["result"]}


def test_the_import_names_bad_hashes_by_row_in_a_dry_run(
    client: TestClient, db: Session, org: Organization, database: BoundDatabase, settings: Settings
) -> None:
    key = factories.make_api_key(db, org)
    job = import_csv(client, key)
    assert job["params"]["mapping"]["password_hash"] == "Password hash"
    run_jobs(database, settings)
    found = fates(client, key, job["id"])
    assert found[2] == ("would be created", "")
    assert found[3][0] == "invalid"
    assert found[3][1].startswith("password_hash is bcrypt with cost 31")
    assert found[4] == ("would be created", "")
    assert found[5][0] == "invalid"
    assert "not a password hash in a known format" in found[5][1]
    assert found[6][0] == "invalid"
    assert "weak" in found[6][1]
    assert found[7] == ("would be created", "")
    report = client.get(f"/api/v1/jobs/{job['id']}", headers=bearer(key)).text
    for stored in (BCRYPT_2B[0], BAD_COST, SHA256[0], DJANGO_SHA256[0]):
        assert stored not in report
    assert db.scalar(select(User).where(User.email == "ann@example.com")) is None


def test_an_active_import_lets_rows_with_a_hash_sign_in_at_once(
    client: TestClient, db: Session, org: Organization, database: BoundDatabase, settings: Settings
) -> None:
    key = factories.make_api_key(db, org)
    job = import_csv(client, key, dry_run="false", status="active", send_invitations="true")
    run_jobs(database, settings)
    found = fates(client, key, job["id"])
    assert [row for row, fate in found.items() if fate[0] == "created"] == [2, 4, 7]
    ann, cy, fay = (
        user_by_email(db, e) for e in ("ann@example.com", "cy@example.com", "fay@example.com")
    )
    assert (ann.status, cy.status, fay.status) == ("active", "pending", "active")
    assert ann.password_hash == BCRYPT_2B[0]
    assert cy.password_hash is None
    invited = set(db.scalars(select(Invitation.user_id)))
    assert cy.id in invited
    assert ann.id not in invited
    assert fay.id not in invited
    sign_in(db, settings, "ann@example.com", BCRYPT_2B[1])
    sign_in(db, settings, "fay@example.com", DJANGO_SHA256[1])
    db.refresh(ann)
    assert ann.password_hash.startswith("$argon2id$")  # type: ignore[union-attr]
    text = audit_text(db, org)
    assert "imported (bcrypt)" in text
    for stored in (BCRYPT_2B[0], DJANGO_SHA256[0]):
        assert stored not in text


def test_a_pending_import_keeps_rows_with_a_hash_not_activated_and_invited(
    client: TestClient, db: Session, org: Organization, database: BoundDatabase, settings: Settings
) -> None:
    key = factories.make_api_key(db, org)
    import_csv(client, key, dry_run="false")
    run_jobs(database, settings)
    ann = user_by_email(db, "ann@example.com")
    assert ann.status == "pending"
    assert ann.password_hash == BCRYPT_2B[0]
    assert ann.id in set(db.scalars(select(Invitation.user_id)))
    with pytest.raises(NotAuthenticated, match="not activated"):
        sign_in(db, settings, "ann@example.com", BCRYPT_2B[1])


def test_an_import_with_a_bad_status_or_without_users_create_is_refused(
    client: TestClient, db: Session, org: Organization
) -> None:
    key = factories.make_api_key(db, org)
    response = client.post(
        "/api/v1/imports",
        files={"file": ("people.csv", CSV.encode(), "text/csv")},
        data={"status": "banned"},
        headers=bearer(key),
    )
    assert response.status_code == 400
    assert "status" in response.text
    role = factories.role(db, org, "Member")
    from userdesk.access.models import RolePermission

    for permission in ("users.read", "users.import"):
        db.add(RolePermission(organization_id=org.id, role_id=role.id, permission=permission))
    db.flush()
    importer = factories.make_api_key(db, org, "Member")
    refused = client.post(
        "/api/v1/imports",
        files={"file": ("people.csv", CSV.encode(), "text/csv")},
        headers=bearer(importer),
    )
    assert refused.status_code == 403, refused.text
    assert "users.create" in refused.text
    allowed = client.post(
        "/api/v1/imports",
        files={"file": ("people.csv", b"Email\r\nx@example.com\r\n", "text/csv")},
        headers=bearer(importer),
    )
    assert allowed.status_code == 202, allowed.text


# --- never shown: API reads, export, audit, webhooks -----------------------------------


def test_the_hash_never_appears_in_reads_exports_audit_rows_or_webhook_payloads(
    client: TestClient, db: Session, org: Organization, settings: Settings
) -> None:
    make_endpoint(db, settings, org.id, "https://hooks.example.com/in", "whsec_" + "a" * 32)
    key = factories.make_api_key(db, org)
    stored = BCRYPT_2B[0]
    created = client.post(
        USERS,
        json={"email": "gil@example.com", "first_name": "Gil", "password_hash": stored},
        headers=bearer(key),
    )
    assert created.status_code == 201
    synced = client.post(
        f"{USERS}/batch",
        json={"users": [{"email": "hal@example.com", "password_hash": DJANGO_SHA256[0]}]},
        headers=bearer(key),
    )
    assert synced.status_code == 200
    user_id = created.json()["id"]
    hashes = (stored, DJANGO_SHA256[0], stored[7:], DJANGO_SHA256[0].split("$")[3])
    texts = {
        "read": client.get(f"{USERS}/{user_id}", headers=bearer(key)).text,
        "list": client.get(USERS, headers=bearer(key)).text,
        "export": client.get(f"{USERS}/export", headers=bearer(key)).text,
        "audit": audit_text(db, org),
        "audit api": client.get("/api/v1/audit", headers=bearer(key)).text,
    }
    assert "gil@example.com" in texts["export"]
    assert "hal@example.com" in texts["export"]
    bodies = db.scalars(select(WebhookMessage.body)).all()
    assert bodies, "the endpoint was told of the new users"
    texts["webhooks"] = "\n".join(bodies)
    assert "gil@example.com" in texts["webhooks"]
    for where, text in texts.items():
        for secret in hashes:
            assert secret not in text, where
        assert not re.search(r"\$2[aby]\$\d\d\$", text), where


def test_a_hash_is_never_in_the_user_create_schemas_repr() -> None:
    from userdesk.users.schemas import UserCreate

    data = UserCreate(email="a@example.com", password_hash=BCRYPT_2B[0])
    assert BCRYPT_2B[0] not in repr(data)
    assert BCRYPT_2B[0] not in str(data)


def test_firebase_parameters_bound_what_a_sign_in_may_cost(
    db: Session, org: Organization, settings: Settings
) -> None:
    from userdesk.errors import InvalidInput

    for rounds, mem_cost, field in ((8, 30, "firebase_mem_cost"), (99, 14, "firebase_rounds")):
        with pytest.raises(InvalidInput) as refused:
            password_imports.update_settings(
                db,
                actor=admin(org),
                settings=settings,
                firebase_signer_key=FIREBASE_KEY,
                firebase_salt_separator="Bw==",
                firebase_rounds=rounds,
                firebase_mem_cost=mem_cost,
            )
        assert field in refused.value.fields
    with pytest.raises(InvalidInput) as refused:
        password_imports.update_settings(
            db, actor=admin(org), settings=settings, firebase_rounds=8, firebase_mem_cost=14
        )
    assert "firebase_signer_key" in refused.value.fields
    assert base64.b64decode(FIREBASE_KEY)  # the key itself is valid base64


def test_the_console_import_maps_the_hash_column_and_activates_on_request(
    client: TestClient, db: Session, org: Organization, database: BoundDatabase, settings: Settings
) -> None:
    boss = factories.make_admin(db, org)
    csrf = factories.login(client, boss.email)
    uploaded = client.post(
        "/console/imports",
        files={"file": ("people.csv", CSV.encode(), "text/csv")},
        data={"csrf_token": csrf},
    )
    assert uploaded.status_code == 303
    page = client.get(uploaded.headers["location"]).text
    assert 'name="map_password_hash"' in page
    assert "<option selected>Password hash</option>" in page
    assert 'data-testid="activate-with-password"' in page
    for stored in (BCRYPT_2B[0], BAD_COST):
        assert stored not in page
    started = client.post(
        uploaded.headers["location"],
        data={
            "map_email": "Email",
            "map_first_name": "First name",
            "map_password_hash": "Password hash",
            "activate_with_password": "true",
            "dry_run": "false",
            "csrf_token": csrf,
        },
    )
    assert started.status_code == 303, started.text
    run_jobs(database, settings)
    job_page = client.get(started.headers["location"]).text
    assert "cost 31" in job_page
    assert BAD_COST not in job_page
    assert user_by_email(db, "ann@example.com").status == "active"
    assert user_by_email(db, "cy@example.com").status == "pending"
    sign_in(db, settings, "ann@example.com", BCRYPT_2B[1])
