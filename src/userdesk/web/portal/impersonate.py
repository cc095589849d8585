"""/impersonate: the page behind an impersonation link, using it, and ending it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from userdesk.auth.service import LinkProblem
from userdesk.errors import PermissionDenied
from userdesk.impersonation import service as impersonation
from userdesk.web.deps import (
    CurrentAuth,
    DbSession,
    SettingsDep,
    client_ip,
    cookie_secure,
    session_cookie,
)
from userdesk.web.portal.routes import STALE_FORM, anonymous_form, form_token_ok, link_problem
from userdesk.web.templating import templates

router = APIRouter(tags=["portal"], include_in_schema=False)


@router.post("/impersonate/end")
def end_impersonation(request: Request, db: DbSession, found: CurrentAuth) -> Response:
    """The banner's button: the impersonated session closes; the admin's own is untouched."""
    if found.session is None or found.user is None or found.impersonation is None:
        return RedirectResponse("/", status_code=303)
    impersonation.end(db, session=found.session, user=found.user)
    response = templates.TemplateResponse(
        request, "portal/impersonation_ended.html", {"name": found.user.name}
    )
    settings = request.app.state.settings
    response.delete_cookie(
        session_cookie(settings), path="/", secure=cookie_secure(settings), httponly=True
    )
    return response


def _confirm_page(
    request: Request, db: DbSession, token: str, error: str | None = None, status: int = 200
) -> Response:
    try:
        pending = impersonation.pending(db, token=token)
    except LinkProblem as problem:
        return link_problem(request, problem, "impersonation")
    return anonymous_form(
        request,
        "portal/impersonate.html",
        {"pending": pending, "token": token, "error": error},
        status,
    )


@router.get("/impersonate/{token}", response_class=HTMLResponse)
def impersonation_page(request: Request, token: str, db: DbSession) -> Response:
    """Whom you are about to become, by whom and why; nothing happens until you confirm
    (a POST, so that a link scanner cannot use the link up)."""
    return _confirm_page(request, db, token)


@router.post("/impersonate/{token}")
def use_impersonation(
    request: Request,
    token: str,
    db: DbSession,
    settings: SettingsDep,
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    if not form_token_ok(request, csrf_token):
        return _confirm_page(request, db, token, error=STALE_FORM, status=403)
    try:
        session_token = impersonation.use(
            db,
            token=token,
            base_url=settings.base_url,
            ip=client_ip(request),
            user_agent=request.headers.get("user-agent"),
            replaces_token=request.cookies.get(session_cookie(settings)),
        )
    except LinkProblem as problem:
        return link_problem(request, problem, "impersonation")
    except PermissionDenied as exc:
        return _confirm_page(request, db, token, error=exc.message, status=403)
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(
        session_cookie(settings),
        session_token,
        max_age=int(impersonation.SESSION_TTL.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=cookie_secure(settings),
        path="/",
    )
    return response
