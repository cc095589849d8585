"""/console/users/{id}/...: the one-click retention actions of the churn card (resend the
invitation, add to a group, an agent's outreach), each back to the user's page."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from userdesk.errors import Conflict, InvalidInput
from userdesk.invitations import service as invitations
from userdesk.outreach import service as outreach
from userdesk.users import groups
from userdesk.web.console.routes import user_page
from userdesk.web.deps import ConsoleAuth, DbSession, SettingsDep
from userdesk.web.inputs import PathId

router = APIRouter(prefix="/console", tags=["console"], include_in_schema=False)


def _done(user_id: int, what: str) -> RedirectResponse:
    return RedirectResponse(f"/console/users/{user_id}?done={what}", status_code=303)


def _refused(
    request: Request, db: DbSession, auth: ConsoleAuth, user_id: int, exc: InvalidInput | Conflict
) -> Response:
    """The user's page again, saying what was wrong (the field and its value, where one is)."""
    detail = "; ".join(exc.fields.values())
    return user_page(
        request,
        db,
        auth,
        user_id,
        problem=f"{exc.message} ({detail})"
        if detail and detail not in exc.message
        else exc.message,
        errors=exc.fields,
        status_code=400 if isinstance(exc, InvalidInput) else 409,
    )


@router.post("/users/{user_id}/invitation/resend", response_class=HTMLResponse)
async def resend_invitation(
    request: Request, user_id: PathId, db: DbSession, auth: ConsoleAuth, settings: SettingsDep
) -> Response:
    """Resend the user's pending invitation: a new link, the old one dead."""
    try:
        invitations.resend_for_user(
            db, actor=auth.actor, user_id=user_id, base_url=settings.base_url
        )
    except Conflict as exc:
        return _refused(request, db, auth, user_id, exc)
    return _done(user_id, "resend_invitation")


@router.post("/users/{user_id}/groups", response_class=HTMLResponse)
async def add_to_group(
    request: Request,
    user_id: PathId,
    db: DbSession,
    auth: ConsoleAuth,
    group_id: Annotated[str, Form()] = "",
) -> Response:
    """Add the user to the chosen group."""
    try:
        groups.add_to_group(db, actor=auth.actor, user_id=user_id, group_id=group_id)
    except (InvalidInput, Conflict) as exc:
        return _refused(request, db, auth, user_id, exc)
    return _done(user_id, "add_to_group")


@router.post("/users/{user_id}/outreach", response_class=HTMLResponse)
async def assign_outreach(
    request: Request,
    user_id: PathId,
    db: DbSession,
    auth: ConsoleAuth,
    settings: SettingsDep,
    agent_id: Annotated[str, Form()] = "",
    note: Annotated[str, Form()] = "",
) -> Response:
    """Ask the chosen agent to reach out to the user; the agent is emailed."""
    try:
        outreach.assign(
            db,
            actor=auth.actor,
            user_id=user_id,
            agent_id=agent_id,
            note=note,
            base_url=settings.base_url,
        )
    except (InvalidInput, Conflict) as exc:
        return _refused(request, db, auth, user_id, exc)
    return _done(user_id, "assign_outreach")


@router.post("/users/{user_id}/outreach/{assignment_id}/reassign", response_class=HTMLResponse)
async def reassign_outreach(
    request: Request,
    user_id: PathId,
    assignment_id: PathId,
    db: DbSession,
    auth: ConsoleAuth,
    settings: SettingsDep,
    agent_id: Annotated[str, Form()] = "",
) -> Response:
    """Give the open outreach to another agent, who is emailed."""
    try:
        outreach.reassign(
            db,
            actor=auth.actor,
            user_id=user_id,
            assignment_id=assignment_id,
            agent_id=agent_id,
            note=None,
            base_url=settings.base_url,
        )
    except (InvalidInput, Conflict) as exc:
        return _refused(request, db, auth, user_id, exc)
    return _done(user_id, "outreach_reassigned")


@router.post("/users/{user_id}/outreach/{assignment_id}/done", response_class=HTMLResponse)
async def outreach_done(
    request: Request, user_id: PathId, assignment_id: PathId, db: DbSession, auth: ConsoleAuth
) -> Response:
    """Mark the outreach done (its agent, or whoever may update the user)."""
    try:
        outreach.mark_done(db, actor=auth.actor, user_id=user_id, assignment_id=assignment_id)
    except Conflict as exc:
        return _refused(request, db, auth, user_id, exc)
    return _done(user_id, "outreach_done")
