"""Domain errors: a stable code, a message, and the fields at fault. No HTTP here."""

from __future__ import annotations


class DomainError(Exception):
    """A rule refused the request. `code` is stable; `fields` maps a field to what is wrong."""

    code = "error"

    def __init__(
        self, message: str, *, code: str | None = None, fields: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.fields = fields or {}


class InvalidInput(DomainError):
    """The input breaks a rule; `fields` names each field and what is wrong with its value."""

    code = "invalid_input"


class NotFound(DomainError):
    """The thing does not exist, or the actor may not know that it does."""

    code = "not_found"


class Conflict(DomainError):
    """The request clashes with the current state (a taken email, an illegal move)."""

    code = "conflict"


class NotAuthenticated(DomainError):
    """No valid credentials came with the request."""

    code = "not_authenticated"


class PermissionDenied(DomainError):
    """The actor is known but may not do this."""

    code = "permission_denied"


class PreconditionFailed(DomainError):
    """Someone else saved first: the version the client edited is not the current one."""

    code = "precondition_failed"


class PreconditionRequired(DomainError):
    """An edit came without the version it was based on (If-Match)."""

    code = "precondition_required"
