"""Errors as RFC 9457 problem details (the API) and as pages (the console and portal)."""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any, cast

import orjson
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.routing import Match

from userdesk.auth.throttle import RateLimited
from userdesk.errors import (
    Conflict,
    DomainError,
    InvalidInput,
    NotAuthenticated,
    NotFound,
    PermissionDenied,
    PreconditionFailed,
    PreconditionRequired,
)

STATUS_BY_ERROR: tuple[tuple[type[DomainError], int], ...] = (
    (InvalidInput, 400),
    (NotAuthenticated, 401),
    (PermissionDenied, 403),
    (NotFound, 404),
    (Conflict, 409),
    (PreconditionFailed, 412),
    (PreconditionRequired, 428),
    (RateLimited, 429),
)


def status_of(error: DomainError) -> int:
    for cls, status in STATUS_BY_ERROR:
        if isinstance(error, cls):
            return status
    return 400


def problem_response(
    status: int,
    code: str,
    detail: str,
    *,
    errors: list[dict[str, str]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if errors:
        body["errors"] = errors
    return Response(
        orjson.dumps(body),
        status_code=status,
        media_type="application/problem+json",
        headers=headers,
    )


def field_errors(fields: dict[str, str]) -> list[dict[str, str]]:
    return [{"field": field, "detail": detail} for field, detail in fields.items()]


async def domain_error_problem(_request: Request, exc: Exception) -> Response:
    exc = cast(DomainError, exc)
    status = status_of(exc)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if isinstance(exc, RateLimited):
        headers = retry_after(exc)
    return problem_response(
        status, exc.code, exc.message, errors=field_errors(exc.fields), headers=headers
    )


def retry_after(exc: RateLimited) -> dict[str, str]:
    """The Retry-After header for a refused attempt."""
    return {"Retry-After": str(exc.retry_after)}


def validation_errors(exc: RequestValidationError) -> list[dict[str, str]]:
    """Each field the framework refused, named as the problem names it, with what is wrong."""
    errors = []
    for error in exc.errors():
        location = [str(p) for p in error.get("loc", ()) if p not in ("body", "query", "path")]
        field = ".".join(location) or "body"
        value = error.get("input")
        shown = "" if isinstance(value, dict | list) or value is None else f" (got {value!r})"
        errors.append({"field": field, "detail": f"{error.get('msg', 'is not valid')}{shown}"})
    return errors


async def validation_error_problem(_request: Request, exc: Exception) -> Response:
    errors = validation_errors(cast(RequestValidationError, exc))
    detail = "; ".join(f"{e['field']}: {e['detail']}" for e in errors)
    return problem_response(400, "invalid_input", detail, errors=errors)


async def http_error_problem(request: Request, exc: Exception) -> Response:
    exc = cast(HTTPException, exc)
    phrase = HTTPStatus(exc.status_code).phrase
    code = phrase.lower().replace(" ", "_")
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = allowed_methods(request)
    return problem_response(exc.status_code, code, str(exc.detail or phrase), headers=headers)


METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def allowed_methods(request: Request) -> str:
    """The Allow header of a 405: the methods of every route at the request's path.

    Starlette answers with the methods of the first route whose path matches, but a path
    often has several (GET, PATCH and DELETE /users/{id} are three routes): each method is
    tried against every route (FastAPI nests included routers, so they are asked whole).
    """
    allowed = []
    for method in METHODS:
        scope = {  # a fresh one per method: matching writes into it
            "type": "http",
            "path": request.scope["path"],
            "root_path": request.scope.get("root_path", ""),
            "method": method,
            "app": request.app,
        }
        if any(route.matches(scope)[0] is Match.FULL for route in request.app.router.routes):
            allowed.append(method)
    return ", ".join(allowed)
