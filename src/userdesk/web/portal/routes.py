"""/login, /logout and /me."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from userdesk.access import service as access
from userdesk.auth import service as auth
from userdesk.auth.secrets import new_token, tokens_equal
from userdesk.errors import NotAuthenticated
from userdesk.web.deps import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    CurrentAuth,
    DbSession,
    OptionalAuth,
    SettingsDep,
    client_ip,
)
from userdesk.web.templating import templates

router = APIRouter(tags=["portal"], include_in_schema=False)


def safe_next(target: str | None) -> str | None:
    """TARGET when it is a path on this site, else None (no open redirects)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return None
    return target


def _home(found: OptionalAuth) -> str:
    if found is not None and found.actor.has_console_access:
        return "/console/users"
    return "/me"


@router.get("/")
def root(found: OptionalAuth) -> RedirectResponse:
    return RedirectResponse("/login" if found is None else _home(found), status_code=303)


def _login_page(
    request: Request,
    *,
    next_path: str | None,
    email: str = "",
    error: str | None = None,
    status: int = 200,
) -> Response:
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or new_token()
    response = templates.TemplateResponse(
        request,
        "portal/login.html",
        {"next": next_path or "", "email": email, "error": error, "login_csrf": token},
        status_code=status,
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        httponly=True,
        samesite="lax",
        path="/login",
        secure=request.app.state.settings.cookie_secure,
    )
    return response


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, found: OptionalAuth, next: str | None = None) -> Response:
    if found is not None:
        return RedirectResponse(safe_next(next) or _home(found), status_code=303)
    return _login_page(request, next_path=safe_next(next))


@router.post("/login")
def login(
    request: Request,
    db: DbSession,
    settings: SettingsDep,
    email: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",
) -> Response:
    expected = request.cookies.get(LOGIN_CSRF_COOKIE)
    if not expected or not tokens_equal(csrf_token, expected):
        return _login_page(
            request,
            next_path=safe_next(next),
            email=email,
            error="The sign-in form had expired. Please try again.",
            status=403,
        )
    try:
        signed_in = auth.sign_in(
            db,
            settings=settings,
            email=email,
            password=password,
            ip=client_ip(request),
            user_agent=request.headers.get("user-agent"),
            replaces_token=request.cookies.get(SESSION_COOKIE),
        )
    except NotAuthenticated as exc:
        return _login_page(
            request, next_path=safe_next(next), email=email, error=exc.message, status=401
        )
    actor = access.actor_for_user(db, signed_in.user)
    target = safe_next(next) or ("/console/users" if actor.has_console_access else "/me")
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        signed_in.token,
        max_age=settings.session_max_age_seconds,
        httponly=True,
        samesite="lax",
        secure=settings.cookie_secure,
        path="/",
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.get("/logout", response_class=HTMLResponse)
def logout_form(request: Request, found: OptionalAuth) -> Response:
    if found is None:
        return RedirectResponse("/login", status_code=303)
    return templates.TemplateResponse(request, "portal/logout.html", {"auth": found})


@router.post("/logout")
def logout(request: Request, db: DbSession, found: CurrentAuth) -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        auth.sign_out(db, token=token)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/me", response_class=HTMLResponse)
def me(request: Request, found: CurrentAuth) -> Response:
    return templates.TemplateResponse(
        request, "portal/me.html", {"auth": found, "user": found.user}
    )
