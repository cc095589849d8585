"""/console/...: the Users list, a user's page, the audit log and settings."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from userdesk.access import service as access
from userdesk.audit import service as audit
from userdesk.users import service as users
from userdesk.users.schemas import UserRead
from userdesk.web.deps import ConsoleAuth, DbSession
from userdesk.web.templating import templates

router = APIRouter(prefix="/console", tags=["console"], include_in_schema=False)


def render(request: Request, template: str, auth: ConsoleAuth, **context: object) -> Response:
    return templates.TemplateResponse(
        request, template, {"auth": auth, "actor": auth.actor, "user": auth.user, **context}
    )


@router.get("")
def console_home(_auth: ConsoleAuth) -> RedirectResponse:
    return RedirectResponse("/console/users", status_code=303)


@router.get("/users", response_class=HTMLResponse)
def users_list(
    request: Request,
    db: DbSession,
    auth: ConsoleAuth,
    sort: str = "name",
    cursor: str | None = None,
) -> Response:
    page = users.list_users(db, actor=auth.actor, sort=sort, cursor=cursor)
    template = (
        "console/_users_rows.html" if request.headers.get("HX-Request") else ("console/users.html")
    )
    return render(request, template, auth, page=page, sort=sort, nav="users")


@router.get("/users/{user_id}", response_class=HTMLResponse)
def user_detail(request: Request, user_id: int, db: DbSession, auth: ConsoleAuth) -> Response:
    subject = UserRead.of(users.get_user(db, actor=auth.actor, user_id=user_id))
    return render(request, "console/user.html", auth, subject=subject, nav="users")


@router.get("/audit", response_class=HTMLResponse)
def audit_log(request: Request, db: DbSession, auth: ConsoleAuth) -> Response:
    events = audit.recent_events(db, actor=auth.actor)
    return render(request, "console/audit.html", auth, events=events, nav="audit")


@router.get("/settings", response_class=HTMLResponse)
def settings_page(request: Request, db: DbSession, auth: ConsoleAuth) -> Response:
    overview = access.organization_overview(db, actor=auth.actor)
    return render(request, "console/settings.html", auth, overview=overview, nav="settings")
