"""The JSON API under /api/v1: its own FastAPI app, so that it has its own OpenAPI and errors."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

from userdesk import __version__
from userdesk.errors import DomainError
from userdesk.web import problems
from userdesk.web.api import segments, users


def create_api() -> FastAPI:
    api = FastAPI(
        title="Userdesk API",
        version=__version__,
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
        description=(
            "Manage an organization's users. Authenticate with `Authorization: Bearer <key>` "
            "(see `userdesk api-key create`) or the console session plus `X-CSRF-Token` on "
            "writes. Errors are RFC 9457 problem details with a stable `code`."
        ),
    )
    api.add_exception_handler(DomainError, problems.domain_error_problem)
    api.add_exception_handler(RequestValidationError, problems.validation_error_problem)
    api.add_exception_handler(HTTPException, problems.http_error_problem)
    api.include_router(users.router)
    api.include_router(segments.router)
    return api
