"""The SCIM request log: each request made with a valid token is a row of its
organization's log with its outcome; failed authentication is in no organization's log;
no token, header or body is kept; the log is bounded and never fails a request."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests import factories
from tests.scim.conftest import USER_SCHEMA, Scim, make_token
from userdesk.access.rules import Actor, system_actor
from userdesk.db.base import utcnow
from userdesk.errors import PermissionDenied
from userdesk.organizations.models import Organization
from userdesk.scim import request_log, tokens
from userdesk.scim.models import ScimRequest


def rows(db: Session, organization_id: int | None = None) -> list[ScimRequest]:
    db.expire_all()
    query = select(ScimRequest).order_by(ScimRequest.id)
    if organization_id is not None:
        query = query.where(ScimRequest.organization_id == organization_id)
    return list(db.scalars(query))


def test_each_request_is_logged_with_its_outcome(
    scim: Scim, db: Session, org: Organization
) -> None:
    """A creation, a miss and a uniqueness conflict are three rows, newest last, each
    with its method, path, status, scimType and detail, and the token that made it."""
    made = scim.create("ann@example.com")
    missing = scim.get("/Users/999999999")
    assert missing.status_code == 404
    taken = scim.send("POST", "/Users", {"schemas": [USER_SCHEMA], "userName": "ann@example.com"})
    assert taken.status_code == 409
    logged = rows(db, org.id)
    assert [(r.method, r.path, r.status) for r in logged] == [
        ("POST", "/scim/v2/Users", 201),
        ("GET", "/scim/v2/Users/999999999", 404),
        ("POST", "/scim/v2/Users", 409),
    ]
    token_id = tokens.list_tokens(db, actor=system_actor(org.id))[0].id
    assert {r.token_id for r in logged} == {token_id}
    assert logged[0].scim_type is None
    assert logged[0].detail is None
    assert logged[1].detail == missing.json()["detail"]
    assert logged[2].scim_type == "uniqueness"
    assert logged[2].detail == taken.json()["detail"]
    assert all(r.duration_ms >= 0 for r in logged)
    assert made["id"]


def test_the_query_keeps_scim_parameters_and_hides_any_other_value(
    scim: Scim, db: Session, org: Organization
) -> None:
    response = scim.get("/Users", filter='userName eq "x@example.com"', access_token="hunter2")
    (row,) = rows(db, org.id)
    assert row.status == response.status_code
    assert row.path == '/scim/v2/Users?filter=userName eq "x@example.com"&access_token=…'


def test_failed_authentication_is_in_no_organizations_log(
    client: TestClient, db: Session, org: Organization, caplog: pytest.LogCaptureFixture
) -> None:
    """No token, a wrong one and a revoked one are refused; none is a row of any log
    (anyone could fill it), and the security log has each refusal."""
    revoked = tokens.create_token(db, actor=system_actor(org.id), name="Old")
    tokens.revoke_token(db, actor=system_actor(org.id), token_id=revoked.token.id)
    db.flush()
    with caplog.at_level(logging.WARNING, logger="userdesk.security"):
        for headers in (
            {},
            {"Authorization": "Bearer scim_not-a-token"},
            {"Authorization": f"Bearer {revoked.secret}"},
        ):
            for path in ("/scim/v2/Users", "/scim/v2/NoSuchThing"):
                response = client.get(path, headers=headers)
                assert response.status_code in (401, 404), response.text
    assert rows(db) == []
    refusals = [
        json.loads(r.getMessage())
        for r in caplog.records
        if r.name == "userdesk.security" and "request_refused" in r.getMessage()
    ]
    assert sum(1 for r in refusals if r["outcome"] == "401") == 3


def test_a_wrong_endpoint_with_a_valid_token_is_logged(
    scim: Scim, db: Session, org: Organization
) -> None:
    """A provider pointed at a wrong base URL sees only 404s: the admin sees them too."""
    assert scim.get("/Userz").status_code == 404
    (row,) = rows(db, org.id)
    assert (row.method, row.path, row.status) == ("GET", "/scim/v2/Userz", 404)


def test_no_token_header_or_body_is_kept(scim: Scim, db: Session, org: Organization) -> None:
    marker = "Zebulon-body-marker"
    scim.create("bo@example.com", given=marker)
    bad = scim.send("POST", "/Users", {"schemas": [USER_SCHEMA], "userName": 12, "x": marker})
    assert bad.status_code == 400
    scim.client.get(f"/scim/v2/Users/{scim.token}", headers=scim.headers())
    logged = rows(db, org.id)
    assert len(logged) == 3
    for row in logged:
        kept = " ".join(str(v) for v in (row.method, row.path, row.scim_type, row.detail))
        assert scim.token not in kept
        assert scim.token[len(tokens.TOKEN_PREFIX) :] not in kept
        assert "Bearer" not in kept
        assert marker not in kept
    assert logged[2].path == "/scim/v2/Users/scim_…"


def test_a_hostile_path_is_kept_capped_and_without_control_characters(
    scim: Scim, db: Session, org: Organization
) -> None:
    long = "a" * 5000
    scim.client.get(f"/scim/v2/Users/<script>{long}", headers=scim.headers())
    (row,) = rows(db, org.id)
    assert row.path.startswith("/scim/v2/Users/<script>aaa")
    assert len(row.path) == request_log.PATH_MAX
    assert row.path.endswith("…")
    assert request_log.logged_path("/a\x00b\x1f", "") == "/a b "


def test_each_organization_sees_its_own_log_only(
    client: TestClient, db: Session, org: Organization
) -> None:
    other = factories.make_organization(db)
    mine = Scim(client, make_token(db, org, "Okta"))
    theirs = Scim(client, make_token(db, other, "Entra"))
    mine.get("/Users/1")
    theirs.get("/Users/2")
    theirs.get("/Groups")
    assert [r.path for r in rows(db, org.id)] == ["/scim/v2/Users/1"]
    assert [r.path for r in rows(db, other.id)] == ["/scim/v2/Users/2", "/scim/v2/Groups"]
    seen = request_log.latest(db, actor=system_actor(org.id))
    assert [r.path for r in seen] == ["/scim/v2/Users/1"]
    errors = request_log.latest(db, actor=system_actor(other.id), errors_only=True)
    assert [r.path for r in errors] == ["/scim/v2/Users/2"]


def test_only_scim_managers_over_the_whole_organization_read_the_log(
    db: Session, org: Organization
) -> None:
    agent = Actor(org.id, 1, None, "agent")
    with pytest.raises(PermissionDenied):
        request_log.latest(db, actor=agent)
    with pytest.raises(PermissionDenied):
        request_log.overview(db, actor=agent)


def test_a_failing_log_write_never_fails_the_request(
    scim: Scim, db: Session, org: Organization, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> int:
        raise RuntimeError("disk full")

    monkeypatch.setattr(request_log, "record_many", broken)
    scim.create("cy@example.com")
    assert scim.get("/Users", filter='userName eq "cy@example.com"').json()["totalResults"] == 1
    assert rows(db, org.id) == []


def test_the_log_is_pruned_by_age_and_by_count(
    db: Session, org: Organization, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows older than KEEP_DAYS go, then all but the newest KEEP_ROWS; another
    organization's rows stay."""
    other = factories.make_organization(db)
    now = utcnow()
    old = now - timedelta(days=request_log.KEEP_DAYS + 1)

    def write(organization_id: int, when: object, n: int) -> None:
        for i in range(n):
            request_log.record(
                db,
                organization_id=organization_id,
                token_id=None,
                method="GET",
                path=f"/scim/v2/Users/{i}",
                status=200,
                now=when,  # type: ignore[arg-type]
            )

    monkeypatch.setattr(request_log, "PRUNE_EVERY", 10**12)  # no pruning while writing
    write(org.id, old, 3)
    write(other.id, old, 2)
    write(org.id, now, 7)
    monkeypatch.setattr(request_log, "KEEP_ROWS", 5)
    assert request_log.prune(db, organization_id=org.id, now=now) == 3 + 2
    kept = rows(db, org.id)
    assert [r.path for r in kept] == [f"/scim/v2/Users/{i}" for i in range(2, 7)]
    assert len(rows(db, other.id)) == 2


def test_every_nth_write_prunes_its_organization(
    db: Session, org: Organization, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(request_log, "PRUNE_EVERY", 1)
    monkeypatch.setattr(request_log, "KEEP_ROWS", 3)
    for i in range(6):
        request_log.record(
            db, organization_id=org.id, token_id=None, method="GET", path=f"/{i}", status=200
        )
    count = db.scalar(
        select(func.count()).select_from(ScimRequest).where(ScimRequest.organization_id == org.id)
    )
    assert count == 3
