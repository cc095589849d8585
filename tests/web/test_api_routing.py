"""The API's routers sit right under the app, each behind its own prefix (web.app.Face.of):
the same routes, the same OpenAPI document and the same answers as the API's routers
included under one router, found with fewer tries."""

from __future__ import annotations

import json

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from starlette.routing import Match

from userdesk import __version__
from userdesk.web import openapi
from userdesk.web.api import DESCRIPTION, PREFIX, ROUTERS
from userdesk.web.api_docs import router as api_docs_router
from userdesk.web.app import Face


def _one_router_app() -> FastAPI:
    """The API as FastAPI's documentation builds one: its routers under one router."""
    app = FastAPI(
        title="Userdesk API",
        version=__version__,
        description=DESCRIPTION,
        openapi_url=f"{PREFIX}/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    openapi.install(app)
    api = APIRouter(prefix=PREFIX)
    for router in ROUTERS:
        api.include_router(router)
    app.include_router(api_docs_router)
    app.include_router(api)
    return app


def _api_routes(app: FastAPI) -> list[tuple[str, list[str], str]]:
    return [
        (context.path or "", sorted(context.methods or ()), context.name or "")
        for context in iter_route_contexts(app.routes)
        if (context.path or "").startswith(PREFIX)
    ]


def test_the_document_is_the_one_of_the_api_under_one_router(app: FastAPI) -> None:
    reference = _one_router_app()
    assert json.dumps(app.openapi()) == json.dumps(reference.openapi())
    common, *declared = _api_routes(app)
    # web.api.users.CommonListRoute, ahead of all, answers the common GET /users itself
    assert common == (f"{PREFIX}/users", ["GET"], "list_users_common")
    assert declared == _api_routes(reference)
    assert len(declared) > 50


def test_a_face_matches_nothing_outside_its_prefix() -> None:
    users = APIRouter(prefix="/users")

    @users.get("")
    def listed() -> None: ...

    face = Face.of(users, prefix=PREFIX)
    assert face.prefixes == (f"{PREFIX}/users/", f"{PREFIX}/users")
    scope = {"type": "http", "path": f"{PREFIX}/usersx", "method": "GET"}
    assert face.matches(scope) == (Match.NONE, {})
    unprefixed = Face.of(APIRouter(), prefix=PREFIX)
    assert unprefixed.prefixes == (f"{PREFIX}/",)


@pytest.mark.parametrize(
    ("method", "path", "status", "allow"),
    [
        ("GET", f"{PREFIX}/users/", 307, None),  # to /users, as before
        ("POST", f"{PREFIX}/users/counts", 405, "GET"),
        ("DELETE", f"{PREFIX}/users", 405, "GET, POST"),
        ("POST", f"{PREFIX}/users/1/churn", 405, "GET"),  # a retention route, before users
        ("PUT", f"{PREFIX}/teams", 405, "GET, POST"),
        ("GET", f"{PREFIX}/usersx", 404, None),
        ("GET", f"{PREFIX}/nothing", 404, None),
        ("GET", PREFIX, 404, None),
        ("GET", f"{PREFIX}/docs", 200, None),
        ("GET", "/healthz", 200, None),
    ],
)
def test_paths_methods_and_misses_answer_as_before(
    client: TestClient, method: str, path: str, status: int, allow: str | None
) -> None:
    answer = client.request(method, path, follow_redirects=False)
    assert answer.status_code == status
    if allow is not None:
        assert sorted(answer.headers["allow"].split(", ")) == sorted(allow.split(", "))
    if status == 404 and path.startswith(f"{PREFIX}/"):
        assert answer.headers["content-type"] == "application/problem+json"
    if status == 307:
        assert answer.headers["location"].endswith(path.rstrip("/"))
