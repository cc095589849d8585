"""Rendering console pages: every page gets the signed-in admin and the sidebar."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response
from markupsafe import Markup

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
            "user": auth.user,
            "sidebar_segments": sidebar,
            **context,
        },
        status_code=status_code,
    )


def fragment(template: str, auth: ConsoleAuth, context: dict[str, object]) -> Markup:
    """A piece of a console page, rendered on its own: each piece of a template's output
    passes up through every template around it, so a big part is cheaper included whole."""
    rendered = templates.get_template(template).render(
        {"auth": auth, "actor": auth.actor, **context}
    )
    return Markup(rendered)  # noqa: S704 - autoescaped


def partial(
    request: Request, template: str, auth: ConsoleAuth, context: dict[str, object]
) -> Response:
    """An htmx fragment of a console page."""
    return templates.TemplateResponse(
        request, template, {"auth": auth, "actor": auth.actor, **context}
    )
