"""The JSON API under /api/v1, described by its own OpenAPI document."""

from __future__ import annotations

from fastapi import APIRouter

from userdesk.web.api import (
    access,
    audit,
    availability,
    churn,
    dashboard,
    events,
    imports,
    invitations,
    jobs,
    me,
    retention,
    segments,
    user_fields,
    users,
    webhooks,
)

PREFIX = "/api/v1"
DESCRIPTION = (
    "Manage an organization's users. Authenticate with `Authorization: Bearer <key>` "
    "(see `userdesk api-key create`) or the console session plus `X-CSRF-Token` on "
    "writes. Errors are RFC 9457 problem details with a stable `code`."
)

# The API's routers, each under PREFIX, in the order their routes are matched (and listed
# in the document); web.app includes them.
ROUTERS: tuple[APIRouter, ...] = (
    retention.router,  # before users: /users/{id}/{action}
    users.router,
    segments.router,
    invitations.router,
    jobs.router,
    audit.router,
    events.router,
    imports.router,
    churn.router,
    dashboard.router,
    availability.router,
    me.router,
    access.roles,
    access.teams,
    access.groups,
    webhooks.router,
    user_fields.router,
)
