"""The SCIM error (RFC 7644 §3.12) for a service's DomainError: one mapping, used by the
/scim/v2 app for a whole request and by Bulk for each of its operations."""

from __future__ import annotations

from scim2_models import SCIMException
from scim2_models.exceptions import (
    ConflictException,
    ForbiddenException,
    InvalidValueException,
    NotFoundException,
    PreconditionFailedException,
    UnauthorizedException,
    UniquenessException,
)

from userdesk.errors import (
    Conflict,
    DomainError,
    NotAuthenticated,
    NotFound,
    PermissionDenied,
    PreconditionFailed,
)


def _detail(exc: DomainError) -> str:
    if not exc.fields:
        return exc.message
    named = "; ".join(f"{field} {what}" for field, what in exc.fields.items())
    return f"{exc.message} ({named})"


def scim_exception_of(exc: DomainError) -> SCIMException:
    """The SCIM error for a service's DomainError (an InvalidInput, or any other, is a 400
    invalidValue)."""
    detail = _detail(exc)
    if isinstance(exc, NotAuthenticated):
        return UnauthorizedException(detail=detail)
    if isinstance(exc, PermissionDenied):
        return ForbiddenException(detail=detail)
    if isinstance(exc, NotFound):
        return NotFoundException(detail=detail)
    if isinstance(exc, PreconditionFailed):
        return PreconditionFailedException(detail=detail)
    if isinstance(exc, Conflict):
        if exc.code == "user.email_taken":
            return UniquenessException(detail=detail)
        return ConflictException(detail=detail)
    return InvalidValueException(detail=detail)
