"""/signup and /signup/confirm/{token}: registering oneself, and confirming it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from userdesk.auth.service import LinkProblem
from userdesk.auth.throttle import RateLimited
from userdesk.errors import InvalidInput
from userdesk.organizations.models import Organization
from userdesk.signup import service as signup
from userdesk.signup.service import Registration, RegistrationClosed
from userdesk.web.deps import DbSession, SettingsDep, client_ip
from userdesk.web.portal.routes import (
    STALE_FORM,
    anonymous_form,
    form_token_ok,
    link_problem,
    login_page,
    password_errors,
)
from userdesk.web.templating import templates

router = APIRouter(tags=["portal"], include_in_schema=False)

NO_ORGANIZATION = RegistrationClosed(
    "Registration is not available here. Use the registration link your organization "
    "gave you, or ask an administrator to invite you."
)


def _closed(request: Request, problem: RegistrationClosed) -> Response:
    """The polite refusal: registration is by invitation only."""
    return templates.TemplateResponse(
        request, "portal/signup_closed.html", {"message": problem.message}, status_code=403
    )


def _form(
    request: Request,
    organization: Organization,
    org: str,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    return anonymous_form(
        request,
        "portal/signup.html",
        {
            "organization": organization,
            "org": org,
            "values": values or {},
            "errors": errors or {},
        },
        status,
    )


@router.get("/signup", response_class=HTMLResponse)
def signup_form(request: Request, db: DbSession, org: str = "") -> Response:
    """The registration form, or a polite page when registration is closed."""
    organization = signup.portal_organization(db, org or None)
    if organization is None:
        return _closed(request, NO_ORGANIZATION)
    try:
        signup.check_open(organization)
    except RegistrationClosed as problem:
        return _closed(request, problem)
    return _form(request, organization, org)


@router.post("/signup", response_class=HTMLResponse)
def register(
    request: Request,
    db: DbSession,
    settings: SettingsDep,
    org: Annotated[str, Form()] = "",
    email: Annotated[str, Form()] = "",
    first_name: Annotated[str, Form()] = "",
    last_name: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    website: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """Register; the answer is the same whether or not the email has an account."""
    organization = signup.portal_organization(db, org or None)
    if organization is None:
        return _closed(request, NO_ORGANIZATION)
    try:
        signup.check_open(organization)
    except RegistrationClosed as problem:
        return _closed(request, problem)
    values = {"email": email, "first_name": first_name, "last_name": last_name}
    if not form_token_ok(request, csrf_token):
        return _form(
            request, organization, org, values=values, errors={"form": STALE_FORM}, status=403
        )
    form = Registration(
        email=email,
        first_name=first_name,
        last_name=last_name,
        password=password,
        website=website,
        ip=client_ip(request),
        user_agent=request.headers.get("user-agent"),
    )
    try:
        signup.register(db, organization=organization, form=form, base_url=settings.base_url)
    except RegistrationClosed as problem:
        return _closed(request, problem)
    except InvalidInput as exc:
        return _form(request, organization, org, values=values, errors=exc.fields, status=400)
    except RateLimited as exc:
        response = _form(
            request, organization, org, values=values, errors={"form": exc.message}, status=429
        )
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    return templates.TemplateResponse(
        request, "portal/signup_sent.html", {"email": email.strip(), "organization": organization}
    )


def _confirm_page(
    request: Request, token: str, *, needs_password: bool, errors: dict[str, str], status: int = 200
) -> Response:
    return anonymous_form(
        request,
        "portal/signup_confirm.html",
        {"token": token, "needs_password": needs_password, "errors": errors},
        status,
    )


@router.get("/signup/confirm/{token}", response_class=HTMLResponse)
def confirm_form(request: Request, token: str, db: DbSession) -> Response:
    """The last step: a button, or a password to choose for an account made without one."""
    try:
        user = signup.find_confirmation(db, token=token)
    except LinkProblem as problem:
        return link_problem(request, problem, "registration")
    return _confirm_page(request, token, needs_password=user.password_hash is None, errors={})


@router.post("/signup/confirm/{token}", response_class=HTMLResponse)
def confirm(
    request: Request,
    token: str,
    db: DbSession,
    password: Annotated[str, Form()] = "",
    password_again: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """Confirm the address and activate the account, then on to sign in."""
    try:
        user = signup.find_confirmation(db, token=token)
    except LinkProblem as problem:
        return link_problem(request, problem, "registration")
    needs_password = user.password_hash is None
    if needs_password:
        errors = password_errors(request, csrf_token, password, password_again)
    else:
        errors = {} if form_token_ok(request, csrf_token) else {"form": STALE_FORM}
    if not errors:
        try:
            user, may_sign_in = signup.confirm(
                db, token=token, password=password if needs_password else "", ip=client_ip(request)
            )
        except InvalidInput as exc:
            errors = exc.fields
    if errors:
        return _confirm_page(
            request, token, needs_password=needs_password, errors=errors, status=400
        )
    notice = (
        "Your account is confirmed: sign in."
        if may_sign_in
        else "Your address is confirmed. An administrator must approve your account before "
        "you can sign in: you will be able to once they have."
    )
    return login_page(request, db, next_path=None, email=user.email, notice=notice)
