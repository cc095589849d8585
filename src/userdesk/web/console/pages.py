"""Rendering console pages: every page gets the signed-in admin and the sidebar."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from userdesk.segments import service as segments
from userdesk.web.deps import ConsoleAuth, DbSession
from userdesk.web.templating import templates


def render(
    request: Request,
    template: str,
    auth: ConsoleAuth,
    db: DbSession,
    *,
    status_code: int = 200,
    **context: object,
) -> Response:
    """A console page, with the sidebar's segments."""
    sidebar = segments.list_segment_links(db, actor=auth.actor)
    return templates.TemplateResponse(
        request,
        template,
        {
            "auth": auth,
            "actor": auth.actor,
            "user": auth.signed_in.user if auth.signed_in else None,  # its name and email
            "sidebar_segments": sidebar,
            **context,
        },
        status_code=status_code,
    )


def partial(
    request: Request, template: str, auth: ConsoleAuth, context: dict[str, object]
) -> Response:
    """An htmx fragment of a console page."""
    return templates.TemplateResponse(
        request, template, {"auth": auth, "actor": auth.actor, **context}
    )
