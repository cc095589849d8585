"""/console/settings/provisioning: SCIM for an organization's identity provider. The base
URL to give it, the tokens (made here, shown once; revoked here), and the provider's latest
requests with their outcome, so that an admin sees why the provider says "failed"; and
whether a department that names no team makes one (scim.settings). The same service
calls as `userdesk scim-token create` and `userdesk scim-settings`; scim.manage over the
whole organization only."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from userdesk.errors import InvalidInput
from userdesk.scim import request_log, tokens
from userdesk.scim import settings as scim_settings
from userdesk.web.console.pages import render
from userdesk.web.deps import ConsoleAuth, DbSession
from userdesk.web.inputs import PathId
from userdesk.web.openapi import SCIM_PREFIX

router = APIRouter(prefix="/settings/provisioning", include_in_schema=False)

BASE = "/console/settings/provisioning"
NO_STORE = {"Cache-Control": "no-store"}


def scim_base_url(request: Request) -> str:
    """The URL an identity provider is given: this server's, as the admin reached it."""
    return str(request.base_url).rstrip("/") + SCIM_PREFIX


def _page(
    request: Request,
    db: DbSession,
    auth: ConsoleAuth,
    *,
    created: tokens.NewScimToken | None = None,
    name: str = "",
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    errors_only = request.query_params.get("errors") == "1"
    seen = request_log.overview(db, actor=auth.actor, errors_only=errors_only)
    page = render(
        request,
        "console/provisioning.html",
        auth,
        db,
        status_code=status_code,
        base_url=scim_base_url(request),
        seen=seen,
        outcome=request_log.outcome,
        errors_only=errors_only,
        created=created,
        name=name,
        errors=errors or {},
        revoked=request.query_params.get("revoked") == "1",
        saved=request.query_params.get("saved") == "1",
        creates_teams=scim_settings.creates_teams(db, auth.actor.organization_id),
        shown=request_log.SHOWN,
        nav="settings",
    )
    if created is not None:
        page.headers.update(NO_STORE)  # the secret must not stay in any cache
    return page


@router.get("", response_class=HTMLResponse)
async def provisioning_page(request: Request, db: DbSession, auth: ConsoleAuth) -> Response:
    """The base URL, the tokens and the latest requests (?errors=1: the failed ones)."""
    return _page(request, db, auth)


@router.post("/tokens", response_class=HTMLResponse)
async def create_token(
    request: Request, db: DbSession, auth: ConsoleAuth, name: Annotated[str, Form()] = ""
) -> Response:
    """Make a token; the answer shows its secret, once."""
    try:
        created = tokens.create_token(db, actor=auth.actor, name=name)
    except InvalidInput as exc:
        return _page(request, db, auth, name=name, errors=exc.fields, status_code=400)
    return _page(request, db, auth, created=created, status_code=201)


@router.post("/tokens/{token_id}/revoke")
async def revoke_token(token_id: PathId, db: DbSession, auth: ConsoleAuth) -> Response:
    """Revoke a token: the provider's next request with it is refused."""
    tokens.revoke_token(db, actor=auth.actor, token_id=token_id)
    return RedirectResponse(f"{BASE}?revoked=1", status_code=303)


@router.post("/settings")
async def save_settings(
    db: DbSession, auth: ConsoleAuth, creates_teams: Annotated[bool, Form()] = False
) -> Response:
    """Turn "a department that names no team makes one" on or off (audited)."""
    scim_settings.set_creates_teams(db, actor=auth.actor, value=creates_teams)
    return RedirectResponse(f"{BASE}?saved=1#teams", status_code=303)
