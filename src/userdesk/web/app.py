"""create_app(): one app, three faces — the console, the portal and the API.

The faces differ in how they fail: the API answers with problem details, the console
and the portal with pages (or a redirect to sign in). One handler per kind of error
decides by the path.
"""

from __future__ import annotations

from pathlib import Path
from typing import cast
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from starlette.datastructures import State
from starlette.exceptions import HTTPException
from starlette.routing import Match, Mount
from starlette.types import ASGIApp, Receive, Scope, Send

from userdesk import __version__
from userdesk.auth.throttle import RateLimited
from userdesk.config import Settings, get_settings
from userdesk.db.replicas import ReplicaRouting
from userdesk.db.session import Database, is_busy
from userdesk.errors import DomainError, NotAuthenticated
from userdesk.two_step import service as two_step
from userdesk.web import access_log, inputs, openapi, problems
from userdesk.web.api import DESCRIPTION, PREFIX, ROUTERS
from userdesk.web.api import users as users_api
from userdesk.web.api_docs import router as api_docs_router
from userdesk.web.console.churn_settings import router as churn_settings_router
from userdesk.web.console.dashboard import router as dashboard_router
from userdesk.web.console.password_imports import router as password_imports_router
from userdesk.web.console.people import router as people_router
from userdesk.web.console.retention import router as retention_router
from userdesk.web.console.routes import CommonUsersPage
from userdesk.web.console.routes import router as console_router
from userdesk.web.console.user_fields import router as user_fields_router
from userdesk.web.console.webhooks import router as webhooks_console_router
from userdesk.web.edge import EdgeMiddleware
from userdesk.web.portal.account import router as account_router
from userdesk.web.portal.impersonate import router as impersonation_router
from userdesk.web.portal.routes import router as portal_router
from userdesk.web.portal.signup import router as signup_router
from userdesk.web.portal.two_step import router as two_step_router
from userdesk.web.problems import status_of
from userdesk.web.templating import templates

STATIC = Path(__file__).parent / "static"


def create_app(settings: Settings | None = None, database: Database | None = None) -> FastAPI:
    """The ASGI app. Tests pass their own DATABASE; by default it comes from SETTINGS."""
    settings = settings or get_settings()
    database = database or Database.from_settings(settings)
    app = FastAPI(
        title="Userdesk API",
        version=__version__,
        description=DESCRIPTION,
        openapi_url=f"{PREFIX}/openapi.json",
        docs_url=None,  # web.api_docs serves it under the CSP, from /static
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.database = database
    openapi.install(app)  # every status each operation can answer, as problems
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(OperationalError, _database_busy)
    # The faces, each behind its own prefixes: a request is matched against one face's
    # routes, not a hundred (see Face); the API's routers each behind their own.
    api_docs = Face(PREFIX + "/")
    api_docs.include_router(api_docs_router)
    app.include_router(api_docs)
    for api_router in ROUTERS:
        app.include_router(Face.of(api_router, prefix=PREFIX))
    # Ahead of every route: the common request of the API's hot path (GET /users with a
    # key), which it alone matches; any other goes on to the declared route.
    app.router.routes.insert(0, users_api.CommonListRoute(PREFIX + users_api.router.prefix))
    app.router.routes.insert(0, CommonUsersPage("/console/users"))  # the same, for the console's
    console_face = Face("/console/", "/console")
    console_face.include_router(dashboard_router)
    console_face.include_router(people_router)  # before console_router: /users/new first
    console_face.include_router(webhooks_console_router)  # before /settings/{kind}
    console_face.include_router(churn_settings_router)  # before /settings/{kind}
    console_face.include_router(password_imports_router)  # before /settings/{kind}
    console_face.include_router(user_fields_router)  # before /settings/{kind}
    console_face.include_router(console_router)
    console_face.include_router(retention_router)
    app.include_router(console_face)
    app.include_router(portal_router)
    app.include_router(account_router)
    app.include_router(two_step_router)
    app.include_router(impersonation_router)
    app.include_router(signup_router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    # SCIM 2.0 for identity providers: an app of its own, whose errors are SCIM's. Ahead
    # of the faces (nothing else lives under its prefix): a provider's request is not
    # matched against forty routes first (0.3 ms of a POST's 3).
    app.router.routes.insert(2, Mount(openapi.SCIM_PREFIX, app=ScimOnFirstRequest(app.state)))
    if database.replicas is not None:  # reads to replicas, writes noted (db.replicas)
        app.add_middleware(ReplicaRouting, replicas=database.replicas, secure=settings.https)
    # No NUL nor lone surrogate past the edge, in any face: a 400 naming the field.
    app.add_middleware(inputs.RefuseUnsafeTextMiddleware, render_page=_refusal_page)
    app.add_middleware(  # outermost: 500s too
        EdgeMiddleware,
        https=settings.https,
        server_timing=settings.server_timing,  # USERDESK_SERVER_TIMING: how long work took
    )
    access_log.install()

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> FileResponse:
        """Where browsers look for the site's icon before any page names one."""
        return FileResponse(STATIC / "favicon.ico", headers={"Cache-Control": "max-age=86400"})

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok"})

    @app.get("/readyz", include_in_schema=False)
    def readyz(request: Request) -> JSONResponse:
        """The primary answers (503 if not); each replica's state, which never fails it."""
        database: Database = request.app.state.database
        try:
            with database.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except Exception as exc:
            return JSONResponse(
                {"status": "unavailable", "detail": type(exc).__name__}, status_code=503
            )
        if database.replicas is not None:
            return JSONResponse({"status": "ok", "replicas": database.replicas.report()})
        return JSONResponse({"status": "ok"})

    return app


class Face(APIRouter):
    """The routes of one face (the API, the console), which says at once that a path
    outside its PREFIXES is none of its own.

    FastAPI matches a request against an included router's routes one by one, its prefix
    no shortcut: behind the portal's and the console's routes the Users list of the API
    was found after 120 tries: 0.3 ms, nearly half of what the bare baseline (bench/
    baseline.py) spends on its whole request.
    """

    def __init__(self, *prefixes: str) -> None:
        super().__init__()
        self.prefixes = prefixes

    @classmethod
    def of(cls, router: APIRouter, *, prefix: str) -> Face:
        """ROUTER included under PREFIX, behind the prefix of its own routes: each level of
        included routers is walked twice per request (matched, then handled), so the API's
        routers sit right under the app, not under a face of their own."""
        base = prefix + router.prefix
        face = cls(f"{base}/", base) if router.prefix else cls(f"{base}/")
        face.include_router(router, prefix=prefix)
        return face

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        path: str = scope.get("path", "")
        if not path.startswith(self.prefixes) and path not in self.prefixes:
            return Match.NONE, {}
        return super().matches(scope)


class ScimOnFirstRequest:
    """The SCIM app (web.scim), made on the first request under its prefix: scim2-models
    and the SCIM adapters (8 MB of every server process's memory) load only in a process
    an identity provider calls."""

    def __init__(self, state: State) -> None:
        self.state = state
        self.app: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.app is None:
            from userdesk.web.scim import create_scim_app

            self.app = create_scim_app(self.state)
        await self.app(scope, receive, send)


def _error_page(
    request: Request, status: int, title: str, message: str, fields: dict[str, str] | None = None
) -> Response:
    return templates.TemplateResponse(
        request,
        "error.html",
        {"status": status, "title": title, "message": message, "fields": fields or {}},
        status_code=status,
    )


def _is_api(request: Request) -> bool:
    return request.url.path.startswith(f"{PREFIX}/")


async def _domain_error(request: Request, exc: Exception) -> Response:
    if _is_api(request):
        return await problems.domain_error_problem(request, exc)
    exc = cast(DomainError, exc)
    if exc.code == two_step.REQUIRED_CODE:  # a back-office user without a second step yet
        return RedirectResponse("/me?two_step=required#two-step", status_code=303)
    if isinstance(exc, NotAuthenticated):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if request.headers.get("HX-Request"):
            return Response(status_code=401, headers={"HX-Redirect": "/login"})
        return RedirectResponse(f"/login?next={quote(target, safe='/')}", status_code=303)
    status = status_of(exc)
    page = _error_page(request, status, "That did not work", exc.message, exc.fields)
    if isinstance(exc, RateLimited):
        page.headers.update(problems.retry_after(exc))
    return page


# Seconds a client is asked to wait when the database stayed locked past busy_timeout.
BUSY_RETRY_AFTER = 1


async def _database_busy(request: Request, exc: Exception) -> Response:
    """SQLite's write lock held by another process for longer than busy_timeout (a long
    import in `userdesk import`, a backup): a 503 to try again shortly, not a 500. Any
    other database failure stays a 500."""
    if not is_busy(cast(OperationalError, exc)):
        raise exc
    message = "The database is busy with another writer; try again in a moment."
    headers = {"Retry-After": str(BUSY_RETRY_AFTER)}
    if _is_api(request):
        return problems.problem_response(503, "database.busy", message, headers=headers)
    page = _error_page(request, 503, "Busy", message)
    page.headers.update(headers)
    return page


async def _refusal_page(request: Request, message: str, fields: dict[str, str]) -> Response:
    return _error_page(request, 400, "That did not work", message, fields)


async def _validation_error(request: Request, exc: Exception) -> Response:
    if _is_api(request):
        return await problems.validation_error_problem(request, exc)
    detail = cast(RequestValidationError, exc).errors()
    message = "; ".join(str(e.get("msg", "is not valid")) for e in detail) or "Bad request"
    # The fields at fault, named as the API's problem names them.
    fields = {
        e["field"]: e["detail"]
        for e in problems.validation_errors(cast(RequestValidationError, exc))
    }
    return _error_page(request, 400, "That did not work", message, fields)


async def _http_error(request: Request, exc: Exception) -> Response:
    if _is_api(request):
        return await problems.http_error_problem(request, exc)
    exc = cast(HTTPException, exc)
    if exc.status_code == 404:
        return _error_page(request, 404, "Not found", "There is nothing at this address.")
    page = _error_page(request, exc.status_code, "That did not work", str(exc.detail))
    if exc.status_code == 405:
        page.headers["Allow"] = problems.allowed_methods(request)
    return page
