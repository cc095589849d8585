"""GET /api/v1/users with a key and plain parameters is answered by the route that
matches that request alone (web.api.users.CommonListRoute), without FastAPI's dependency
solving; every other request goes on to the declared route. Both answer alike: the same
status, headers and body, errors included."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.orm import Session
from starlette.routing import Match

from tests import factories
from tests.route_inputs import declared_inputs
from userdesk.auth.models import ApiKey
from userdesk.db.base import utcnow
from userdesk.organizations.models import Organization
from userdesk.web.api import users as users_api
from userdesk.web.api.users import CommonListRoute

PATH = "/api/v1/users"


def _scope(query: str, headers: list[tuple[bytes, bytes]], method: str = "GET") -> dict:
    return {
        "type": "http",
        "method": method,
        "path": PATH,
        "root_path": "",
        "query_string": query.encode(),
        "headers": headers,
    }


BEARER = [(b"authorization", b"Bearer ud_key")]


@pytest.mark.parametrize(
    ("query", "headers", "method", "common"),
    [
        ("", BEARER, "GET", True),
        ("limit=50&sort=-created&q=ann%20status:active&cursor=abc", BEARER, "GET", True),
        ("limit=500", [(b"authorization", b"bearer  ud_key ")], "GET", True),
        ("limit=1&limit=7", BEARER, "GET", True),  # the last, as FastAPI takes it
        ("", [], "GET", False),  # no key: a session cookie, or nobody
        ("", [(b"cookie", b"userdesk_session=x")], "GET", False),
        ("", BEARER, "HEAD", False),
        ("limit=0", BEARER, "GET", False),
        ("limit=501", BEARER, "GET", False),
        ("limit=0050", BEARER, "GET", False),  # leading zeros: FastAPI's to read
        ("limit=+5", BEARER, "GET", False),
        ("limit=", BEARER, "GET", False),
        ("limit=%EF%BC%95", BEARER, "GET", False),  # a fullwidth 5
        ("sort=age", BEARER, "GET", False),
    ],
)
def test_only_the_common_request_is_matched(
    query: str, headers: list[tuple[bytes, bytes]], method: str, common: bool
) -> None:
    route = CommonListRoute(PATH)
    match, _ = route.matches(_scope(query, headers, method))
    assert (match is Match.FULL) is common


def test_no_other_path_is_matched() -> None:
    route = CommonListRoute(PATH)
    for path in (f"{PATH}/", f"{PATH}/counts", "/api/v1/usersx"):
        scope = {**_scope("", BEARER), "path": path}
        assert route.matches(scope)[0] is Match.NONE


def test_the_common_route_comes_before_the_declared_one(app: FastAPI) -> None:
    routes = app.router.routes
    common = next(i for i, r in enumerate(routes) if isinstance(r, CommonListRoute))
    assert all(type(r).__name__ != "_IncludedRouter" for r in routes[:common])


def _answers_alike(client: TestClient, common: str, declared: str, key: str) -> dict:
    """The answers to the COMMON query and to the DECLARED one (the same request, put so
    that the common route leaves it), which must be the same."""
    headers = {"Authorization": f"Bearer {key}"}
    route = CommonListRoute(PATH)
    raw = [(b"authorization", f"Bearer {key}".encode())]
    assert route.matches(_scope(common, raw))[0] is Match.FULL
    assert route.matches(_scope(declared, raw))[0] is Match.NONE
    first = client.get(f"{PATH}?{common}", headers=headers)
    second = client.get(f"{PATH}?{declared}", headers=headers)
    assert first.status_code == second.status_code
    assert first.content == second.content
    assert {k: v for k, v in first.headers.items() if k != "date"} == {
        k: v for k, v in second.headers.items() if k != "date"
    }
    return first.json()


def test_a_page_and_the_next_are_the_declared_routes(
    client: TestClient, db: Session, org: Organization
) -> None:
    team = factories.make_team(db, org, "Support")
    for name in ("Ann", "Bob", "Cid"):
        factories.make_user(db, org, first_name=name, team=team)
    key = factories.make_api_key(db, org)
    page = _answers_alike(client, "limit=2&sort=-name", "limit=0002&sort=-name", key)
    assert len(page["items"]) == 2
    assert page["next_cursor"]
    cursor = page["next_cursor"]
    rest = _answers_alike(
        client, f"limit=2&sort=-name&cursor={cursor}", f"limit=0002&sort=-name&cursor={cursor}", key
    )
    assert rest["items"]
    assert _answers_alike(client, "q=ann", "q=ann&limit=0050", key)["items"]


def test_errors_are_the_declared_routes(client: TestClient, db: Session, org: Organization) -> None:
    """A bad cursor, a bad query, a key without the permission, a revoked key: the same
    problem either way."""
    key = factories.make_api_key(db, org)
    bad_cursor = _answers_alike(client, "cursor=nope", "cursor=nope&limit=0050", key)
    assert bad_cursor["status"] == 400
    assert _answers_alike(client, "q=status:nope", "q=status:nope&limit=0050", key)["status"] == 400
    member = factories.make_api_key(db, org, role_name="Member")
    assert _answers_alike(client, "", "limit=0050", member)["status"] == 403
    db.execute(update(ApiKey).values(revoked_at=utcnow()))
    db.flush()
    assert _answers_alike(client, "", "limit=0050", key)["code"] == "auth.invalid_api_key"


def test_the_common_route_reads_every_parameter_the_declared_route_takes() -> None:
    """A parameter or dependency added to the declared route must be added to the common
    one too (which would otherwise answer without it): this fails until it is."""
    declared = declared_inputs(users_api.router, users_api.list_users)
    assert declared == {
        "query": {"q", "sort", "limit", "cursor"},
        "other": set(),
        "calls": {"unit_of_work", "current_actor"},
    }
