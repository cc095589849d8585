"""Two-step verification pages: setting it up on /me, and the sign-in's second step.

Secrets and recovery codes are shown once, in the response to the form that made them,
never at an address of their own.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from userdesk.auth import throttle
from userdesk.auth.service import LinkProblem
from userdesk.errors import DomainError, InvalidInput
from userdesk.two_step import service as two_step
from userdesk.web.deps import Auth, CurrentAuth, DbSession, SettingsDep, client_ip, session_cookie
from userdesk.web.portal import account as my_account
from userdesk.web.portal import devices
from userdesk.web.portal import routes as portal
from userdesk.web.problems import status_of
from userdesk.web.templating import templates

router = APIRouter(tags=["portal"], include_in_schema=False)

my_account.DONE["two_step_off"] = "Two-step verification is off."


def _setup_page(
    request: Request,
    db: DbSession,
    found: Auth,
    settings: SettingsDep,
    *,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    user = my_account.own_user(found)
    enrollment = two_step.pending_enrollment(db, user=user, settings=settings)
    if enrollment is None:
        return RedirectResponse("/me#two-step", status_code=303)
    return templates.TemplateResponse(
        request,
        "portal/two_step_setup.html",
        {"auth": found, "enrollment": enrollment, "errors": errors or {}},
        status_code=status,
    )


def _codes_page(request: Request, found: Auth, codes: list[str]) -> Response:
    return templates.TemplateResponse(
        request, "portal/recovery_codes.html", {"auth": found, "codes": codes}
    )


@router.post("/me/two-step/begin")
def begin(db: DbSession, found: CurrentAuth, settings: SettingsDep) -> Response:
    """A new secret to scan; it is in force once a first code confirms it."""
    two_step.begin(db, actor=found.actor, user=my_account.own_user(found), settings=settings)
    return RedirectResponse("/me/two-step", status_code=303)


@router.get("/me/two-step", response_class=HTMLResponse)
def setup(request: Request, db: DbSession, found: CurrentAuth, settings: SettingsDep) -> Response:
    return _setup_page(request, db, found, settings)


@router.post("/me/two-step/confirm")
def confirm(
    request: Request,
    db: DbSession,
    found: CurrentAuth,
    settings: SettingsDep,
    current_password: Annotated[str, Form()] = "",
    code: Annotated[str, Form()] = "",
) -> Response:
    try:
        codes = two_step.confirm(
            db,
            actor=found.actor,
            user=my_account.own_user(found),
            settings=settings,
            current_password=current_password,
            code=code,
        )
    except (InvalidInput, throttle.RateLimited) as exc:
        return _setup_page(
            request,
            db,
            found,
            settings,
            errors=dict(exc.fields) or {"form": exc.message},
            status=status_of(exc),
        )
    return _codes_page(request, found, codes)


@router.post("/me/two-step/disable")
def disable(
    request: Request,
    db: DbSession,
    found: CurrentAuth,
    settings: SettingsDep,
    current_password: Annotated[str, Form()] = "",
) -> Response:
    try:
        two_step.disable(
            db,
            actor=found.actor,
            user=my_account.own_user(found),
            settings=settings,
            current_password=current_password,
        )
    except DomainError as exc:
        return my_account.refused(request, db, found, "two_step", exc, {})
    return RedirectResponse("/me?done=two_step_off", status_code=303)


@router.post("/me/two-step/recovery-codes")
def recovery_codes(
    request: Request,
    db: DbSession,
    found: CurrentAuth,
    current_password: Annotated[str, Form()] = "",
) -> Response:
    try:
        codes = two_step.regenerate_recovery_codes(
            db,
            actor=found.actor,
            user=my_account.own_user(found),
            current_password=current_password,
        )
    except DomainError as exc:
        return my_account.refused(request, db, found, "two_step", exc, {})
    return _codes_page(request, found, codes)


@router.post("/login/two-step")
def second_step(
    request: Request,
    db: DbSession,
    settings: SettingsDep,
    challenge: Annotated[str, Form()] = "",
    code: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",
    keep_signed_in: Annotated[str, Form()] = "",
) -> Response:
    target = portal.safe_next(next)
    keep = keep_signed_in == "true"
    if not portal.form_token_ok(request, csrf_token):
        return portal.login_page(request, db, next_path=target, error=portal.STALE_FORM, status=403)
    try:
        signed_in = two_step.complete_challenge(
            db,
            settings=settings,
            token=challenge,
            code=code,
            ip=client_ip(request),
            user_agent=request.headers.get("user-agent"),
            replaces_token=request.cookies.get(session_cookie(settings)),
            keep_signed_in=keep,
        )
    except LinkProblem:
        return portal.login_page(
            request,
            db,
            next_path=target,
            error="That sign-in took too long. Please sign in again.",
            status=401,
        )
    except (InvalidInput, throttle.RateLimited) as exc:
        response = portal.second_step_page(
            request,
            token=challenge,
            next_path=target,
            keep_signed_in=keep,
            error=exc.message,
            status=status_of(exc),
        )
        if isinstance(exc, throttle.RateLimited):
            response.headers["Retry-After"] = str(exc.retry_after)
        return response
    response = portal.signed_in_response(db, settings, signed_in, target)
    devices.remember(request, response, settings, signed_in.user.id)
    return response
