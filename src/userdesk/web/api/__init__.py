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
    users,
)

PREFIX = "/api/v1"
DESCRIPTION = (
    "Manage an organization's users. Authenticate with `Authorization: Bearer <key>` "
    "(see `userdesk api-key create`) or the console session plus `X-CSRF-Token` on "
    "writes. Errors are RFC 9457 problem details with a stable `code`."
)

router = APIRouter(prefix=PREFIX)
router.include_router(retention.router)  # before users: /users/{id}/{action}
router.include_router(users.router)
router.include_router(segments.router)
router.include_router(invitations.router)
router.include_router(jobs.router)
router.include_router(audit.router)
router.include_router(events.router)
router.include_router(imports.router)
router.include_router(churn.router)
router.include_router(dashboard.router)
router.include_router(availability.router)
router.include_router(me.router)
for face in (access.roles, access.teams, access.groups):
    router.include_router(face)
