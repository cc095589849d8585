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


async def validation_error_problem(_request: Request, exc: Exception) -> Response:
    exc = cast(RequestValidationError, exc)
    errors = []
    for error in exc.errors():
        location = [str(part) for part in error.get("loc", ()) if part not in ("body", "query")]
        field = ".".join(location) or "body"
        value = error.get("input")
        shown = "" if isinstance(value, dict | list) or value is None else f" (got {value!r})"
        errors.append({"field": field, "detail": f"{error.get('msg', 'is not valid')}{shown}"})
    detail = "; ".join(f"{e['field']}: {e['detail']}" for e in errors)
    return problem_response(400, "invalid_input", detail, errors=errors)


async def http_error_problem(_request: Request, exc: Exception) -> Response:
    exc = cast(HTTPException, exc)
    phrase = HTTPStatus(exc.status_code).phrase
    code = phrase.lower().replace(" ", "_")
    return problem_response(exc.status_code, code, str(exc.detail or phrase), headers=exc.headers)
