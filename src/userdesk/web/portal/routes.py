"""/login, /logout and /me."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from userdesk.access import service as access
from userdesk.auth import service as auth
from userdesk.auth import signin, throttle
from userdesk.auth.secrets import new_token, tokens_equal
from userdesk.auth.service import LinkProblem
from userdesk.errors import InvalidInput, NotAuthenticated
from userdesk.impersonation import service as impersonation
from userdesk.invitations import service as invitations
from userdesk.organizations.models import Organization
from userdesk.signup import service as signup
from userdesk.two_step import service as two_step
from userdesk.two_step.service import SecondStep
from userdesk.users import service as users
from userdesk.web.deps import (
    CurrentAuth,
    DbSession,
    OptionalAuth,
    SettingsDep,
    client_ip,
    cookie_secure,
    form_csrf_cookie,
    session_cookie,
)
from userdesk.web.portal import account as my_account
from userdesk.web.portal import devices
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


def anonymous_form(
    request: Request, template: str, context: dict[str, object], status: int = 200
) -> Response:
    """A page with a form for someone not signed in, protected by a double-submit token."""
    cookie = form_csrf_cookie(request.app.state.settings)
    token = request.cookies.get(cookie) or new_token()
    response = templates.TemplateResponse(
        request, template, {**context, "form_csrf": token}, status_code=status
    )
    response.set_cookie(
        cookie,
        token,
        httponly=True,
        samesite="lax",
        path="/",
        secure=cookie_secure(request.app.state.settings),
    )
    return response


def form_token_ok(request: Request, sent: str) -> bool:
    expected = request.cookies.get(form_csrf_cookie(request.app.state.settings))
    return bool(expected) and tokens_equal(sent, expected or "")


STALE_FORM = "The form had expired. Please try again."


def login_page(
    request: Request,
    db: DbSession,
    *,
    next_path: str | None,
    email: str = "",
    error: str | None = None,
    notice: str | None = None,
    status: int = 200,
) -> Response:
    offers = signup.sign_in_offers(db)
    return anonymous_form(
        request,
        "portal/login.html",
        {
            "next": next_path or "",
            "email": email,
            "error": error,
            "notice": notice,
            "signup": offers.registration,
            "keep_signed_in": offers.keep_signed_in,
        },
        status,
    )


@router.get("/login", response_class=HTMLResponse)
def login_form(
    request: Request, db: DbSession, found: OptionalAuth, next: str | None = None
) -> Response:
    if found is not None:
        return RedirectResponse(safe_next(next) or _home(found), status_code=303)
    return login_page(request, db, next_path=safe_next(next))


@router.post("/login")
def login(
    request: Request,
    db: DbSession,
    settings: SettingsDep,
    email: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",
    keep_signed_in: Annotated[str, Form()] = "",
) -> Response:
    if not form_token_ok(request, csrf_token):
        return login_page(
            request, db, next_path=safe_next(next), email=email, error=STALE_FORM, status=403
        )
    try:
        signed_in = signin.sign_in(
            db,
            settings=settings,
            email=email,
            password=password,
            ip=client_ip(request),
            user_agent=request.headers.get("user-agent"),
            replaces_token=request.cookies.get(session_cookie(settings)),
            keep_signed_in=keep_signed_in == "true",
            device_cookie=devices.carried(request, settings),
        )
    except NotAuthenticated as exc:
        return login_page(
            request, db, next_path=safe_next(next), email=email, error=exc.message, status=401
        )
    except throttle.RateLimited as exc:
        response = login_page(
            request, db, next_path=safe_next(next), email=email, error=exc.message, status=429
        )
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    if isinstance(signed_in, SecondStep):
        return second_step_page(
            request,
            token=signed_in.token,
            next_path=safe_next(next),
            keep_signed_in=keep_signed_in == "true",
        )
    response = signed_in_response(db, settings, signed_in, safe_next(next))
    devices.remember(request, response, settings, signed_in.user.id)
    return response


def second_step_page(
    request: Request,
    *,
    token: str,
    next_path: str | None,
    keep_signed_in: bool,
    error: str | None = None,
    status: int = 200,
) -> Response:
    """The sign-in's second step: the code from the authenticator app, or a recovery code."""
    return anonymous_form(
        request,
        "portal/login_two_step.html",
        {
            "challenge": token,
            "next": next_path or "",
            "keep_signed_in": keep_signed_in,
            "error": error,
        },
        status,
    )


def signed_in_response(
    db: DbSession, settings: SettingsDep, signed_in: auth.SignedIn, target: str | None
) -> Response:
    """Send the newly signed-in person on, with their session cookie: one that ends with the
    browser, unless the session is a kept one ("keep me signed in")."""
    actor = access.actor_for_user(db, signed_in.user)
    home = "/console/users" if actor.has_console_access else "/me"
    response = RedirectResponse(target or home, status_code=303)
    response.set_cookie(
        session_cookie(settings),
        signed_in.token,
        max_age=signed_in.cookie_max_age,
        httponly=True,
        samesite="lax",
        secure=cookie_secure(settings),
        path="/",
    )
    return response


@router.get("/logout", response_class=HTMLResponse)
def logout_form(request: Request, found: OptionalAuth) -> Response:
    if found is None:
        return RedirectResponse("/login", status_code=303)
    return templates.TemplateResponse(request, "portal/logout.html", {"auth": found})


@router.post("/logout")
def logout(request: Request, db: DbSession, found: CurrentAuth, settings: SettingsDep) -> Response:
    token = request.cookies.get(session_cookie(settings))
    if found.impersonation is not None and found.session and found.user:
        impersonation.end(db, session=found.session, user=found.user, why="signed out")
    elif token:
        auth.sign_out(db, token=token)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(
        session_cookie(settings), path="/", secure=cookie_secure(settings), httponly=True
    )
    return response


@router.get("/me", response_class=HTMLResponse)
def me(request: Request, db: DbSession, found: CurrentAuth) -> Response:
    """My account: name, email, password and sessions (web/portal/account.py)."""
    return my_account.me_page(request, db, found)


@router.post("/me/verification-email")
def my_verification_email(
    request: Request, db: DbSession, found: CurrentAuth, settings: SettingsDep
) -> Response:
    """Email me a new link to confirm my address."""
    if found.user is None:
        raise NotAuthenticated("Sign in first.", code="not_authenticated")
    try:
        users.send_own_verification_email(
            db, user=found.user, base_url=settings.base_url, ip=client_ip(request)
        )
    except throttle.RateLimited as exc:
        response = my_account.me_page(request, db, found, error=exc.message, status=429)
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    return RedirectResponse("/me?sent=1", status_code=303)


def link_problem(request: Request, problem: LinkProblem, kind: str) -> Response:
    return templates.TemplateResponse(
        request,
        "portal/link_problem.html",
        {"problem": problem, "kind": kind},
        status_code=410 if problem.code != "link.invalid" else 404,
    )


@router.get("/invite/{token}", response_class=HTMLResponse)
def invitation_form(request: Request, token: str, db: DbSession) -> Response:
    """Who invited you to what, and a form to choose a password."""
    try:
        invitation = invitations.find_by_token(db, token=token)
    except LinkProblem as problem:
        return link_problem(request, problem, "invitation")
    organization = db.get_one(Organization, invitation.organization_id)
    return anonymous_form(
        request,
        "portal/invitation.html",
        {"invitation": invitation, "organization": organization, "errors": {}},
    )


@router.post("/invite/{token}")
def accept_invitation(
    request: Request,
    token: str,
    db: DbSession,
    settings: SettingsDep,
    password: Annotated[str, Form()] = "",
    password_again: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """Set the password, which also verifies the email and activates the account."""
    try:
        invitation = invitations.find_by_token(db, token=token)
    except LinkProblem as problem:
        return link_problem(request, problem, "invitation")
    errors = password_errors(request, csrf_token, password, password_again)
    if not errors:
        try:
            user = invitations.accept(db, token=token, password=password)
        except InvalidInput as exc:
            errors = exc.fields
    if errors:
        organization = db.get_one(Organization, invitation.organization_id)
        return anonymous_form(
            request,
            "portal/invitation.html",
            {"invitation": invitation, "organization": organization, "errors": errors},
            400,
        )
    if two_step.is_enabled(db, user):  # an earlier account's second step still holds
        challenge = two_step.start_challenge(db, user=user)
        return second_step_page(
            request, token=challenge.token, next_path=None, keep_signed_in=False
        )
    signed_in = auth.start_session(
        db,
        settings=settings,
        user=user,
        ip=client_ip(request),
        user_agent=request.headers.get("user-agent"),
        replaces_token=request.cookies.get(session_cookie(settings)),
    )
    return signed_in_response(db, settings, signed_in, None)


def password_errors(
    request: Request, csrf_token: str, password: str, password_again: str
) -> dict[str, str]:
    if not form_token_ok(request, csrf_token):
        return {"form": STALE_FORM}
    if password != password_again:
        return {"password_again": "does not match the password"}
    return {}


@router.get("/verify/{token}", response_class=HTMLResponse)
def verify_email(request: Request, token: str, db: DbSession) -> Response:
    try:
        user = users.verify_email(db, token=token)
    except LinkProblem as problem:
        return link_problem(request, problem, "verification")
    return templates.TemplateResponse(request, "portal/verified.html", {"email": user.email})


@router.get("/email/confirm/{token}", response_class=HTMLResponse)
def confirm_email_change(request: Request, token: str, db: DbSession) -> Response:
    try:
        user = users.confirm_email_change(db, token=token)
    except LinkProblem as problem:
        return link_problem(request, problem, "verification")
    return templates.TemplateResponse(request, "portal/verified.html", {"email": user.email})


@router.get("/password/forgot", response_class=HTMLResponse)
def forgot_password_form(request: Request) -> Response:
    return anonymous_form(request, "portal/forgot.html", {"sent": False, "email": ""})


@router.post("/password/forgot", response_class=HTMLResponse)
def forgot_password(
    request: Request,
    db: DbSession,
    settings: SettingsDep,
    email: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """The same answer whether or not the email has an account."""
    if not form_token_ok(request, csrf_token):
        return anonymous_form(
            request, "portal/forgot.html", {"sent": False, "email": email, "error": STALE_FORM}, 403
        )
    try:
        users.request_password_reset(
            db, email=email, base_url=settings.base_url, ip=client_ip(request)
        )
    except throttle.RateLimited as exc:
        response = anonymous_form(
            request,
            "portal/forgot.html",
            {"sent": False, "email": email, "error": exc.message},
            429,
        )
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    return anonymous_form(request, "portal/forgot.html", {"sent": True, "email": email})


@router.get("/password/reset/{token}", response_class=HTMLResponse)
def reset_password_form(request: Request, token: str, db: DbSession) -> Response:
    try:
        auth.find_user_token(db, token=token, purpose=users.SET_PASSWORD)
    except LinkProblem as problem:
        return link_problem(request, problem, "password")
    return anonymous_form(request, "portal/reset.html", {"errors": {}})


@router.post("/password/reset/{token}", response_class=HTMLResponse)
def reset_password(
    request: Request,
    token: str,
    db: DbSession,
    password: Annotated[str, Form()] = "",
    password_again: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    errors = password_errors(request, csrf_token, password, password_again)
    if not errors:
        try:
            user = users.reset_password(db, token=token, password=password)
        except LinkProblem as problem:
            return link_problem(request, problem, "password")
        except InvalidInput as exc:
            errors = exc.fields
    if errors:
        return anonymous_form(request, "portal/reset.html", {"errors": errors}, 400)
    return login_page(
        request, db, next_path=None, email=user.email, notice="Your password is set: sign in."
    )
