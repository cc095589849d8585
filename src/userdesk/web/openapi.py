"""The API's OpenAPI document, made to tell the truth about how operations fail.

FastAPI describes each operation's success and a 422 for bad input; the API answers
every error as an RFC 9457 problem, and bad input (a request the schema refuses, or one a
rule refuses) as a 400. This module rewrites the generated document once, in one place:
the 422 goes, and each operation gets the error statuses it can answer, by its shape:

- 400 where the request carries anything to validate (parameters or a body);
- 401 and 403 everywhere (no or bad credentials; a grant that does not allow it, or a
  browser write without its CSRF token);
- 404 where a path names something (it may not exist, or be out of the caller's reach);
- 409 on writes (a taken name, a move the status does not allow, ...);
- 412 and 428 where the operation takes `If-Match`;

plus whatever a route declares itself in `responses=` (429 where it is throttled), each
as a problem. It also declares the Bearer API key as the security scheme every operation
needs, says that `If-Match` is required where an operation takes it (428 without), and
that no text holds a NUL (`web.inputs` refuses it, and a lone surrogate, in every field:
JSON Schema cannot say the latter). Last, it adds OpenAPI 3.1's `webhooks`: one entry per
event type an endpoint is sent, its body's schema (from webhooks.catalog) and the
signature headers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from userdesk.web.deps import SESSION_COOKIE
from userdesk.webhooks import catalog
from userdesk.webhooks.service import retry_schedule_text

PROBLEM_MEDIA_TYPE = "application/problem+json"

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details, with a stable `code`.",
    "type": "object",
    "required": ["type", "title", "status", "detail", "code"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "code": {"type": "string", "description": "Stable, e.g. `user.email_taken`."},
        "errors": {
            "type": "array",
            "description": "For bad input: each field at fault and what is wrong with it.",
            "items": {
                "type": "object",
                "required": ["field", "detail"],
                "properties": {"field": {"type": "string"}, "detail": {"type": "string"}},
            },
        },
    },
}

# status -> what it means for any operation that can answer it
MEANINGS: dict[int, str] = {
    400: "Bad input: the request breaks the schema or a rule; `errors` names each field.",
    401: "No valid credentials (an API key as `Authorization: Bearer`, or a session).",
    403: "The caller may not do this (or a browser write came without its CSRF token).",
    404: "Nothing with that id within the caller's reach.",
    409: "The request clashes with the current state (a taken name, an illegal move).",
    412: "Someone else saved first: `If-Match` is not the current ETag.",
    428: "`If-Match` is required: send the ETag that GET answered.",
}

# Text as every field takes it: anything but NUL (a string without its own pattern, format
# or set of values gets this pattern).
TEXT_PATTERN = "^[^\\x00]*$"
# What an ETag of this API looks like in If-Match: W/"3", "3" or 3.
IF_MATCH_PATTERN = '^(W/)?"?[0-9]{1,18}"?$'

WRITES = frozenset({"post", "put", "patch", "delete"})
METHODS = frozenset({"get", "head", "options", "trace", *WRITES})


def statuses_of(method: str, operation: dict[str, Any]) -> list[int]:
    """The error statuses an operation can answer, from its method and what it takes."""
    parameters = operation.get("parameters", [])
    located = {p.get("in") for p in parameters}
    headers = {str(p.get("name", "")).lower() for p in parameters if p.get("in") == "header"}
    found = [401, 403]
    if parameters or "requestBody" in operation:
        found.append(400)
    if "path" in located:
        found.append(404)
    if method in WRITES:
        found.append(409)
    if "if-match" in headers:
        found += [412, 428]
    return sorted(found)


def describe_errors(document: dict[str, Any]) -> dict[str, Any]:
    """Rewrite a generated document in place (and return it): problems, not 422s."""
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    schemas["Problem"] = PROBLEM_SCHEMA
    components.setdefault("securitySchemes", {}).update(
        {
            "apiKey": {
                "type": "http",
                "scheme": "bearer",
                "description": "An API key from `userdesk api-key create`.",
            },
            "session": {
                "type": "apiKey",
                "in": "cookie",
                "name": SESSION_COOKIE,
                "description": (
                    "A console session (`__Host-` before the name over HTTPS); a write sends "
                    "the page's CSRF token as `X-CSRF-Token`."
                ),
            },
        }
    )
    document["security"] = [{"apiKey": []}, {"session": []}]
    problem = {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    _text_without_nul(schemas)
    for path in document.get("paths", {}).values():
        for method, operation in path.items():
            if method not in METHODS:
                continue
            for parameter in operation.get("parameters", []):
                if str(parameter.get("name", "")).lower() == "if-match":
                    parameter["required"] = True
                    parameter["schema"] = {"type": "string", "pattern": IF_MATCH_PATTERN}
                _text_without_nul(parameter.get("schema"))
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            for status in statuses_of(method, operation):
                responses.setdefault(str(status), {"description": MEANINGS[status]})
            for status, answer in responses.items():
                if status.startswith("4"):  # a route's own (429, ...) and the common ones
                    answer["content"] = problem
                if status == "429":
                    answer.setdefault("headers", {})["Retry-After"] = {
                        "description": "Seconds to wait before trying again.",
                        "schema": {"type": "integer", "minimum": 0},
                    }
    return document


def _text_without_nul(schema: Any) -> None:
    """Give each free string in SCHEMA (walked whole) the pattern that refuses NUL."""
    if isinstance(schema, list):
        for item in schema:
            _text_without_nul(item)
        return
    if not isinstance(schema, dict):
        return
    if schema.get("type") == "string" and not {"pattern", "format", "enum", "const"} & set(schema):
        schema["pattern"] = TEXT_PATTERN
    if schema.get("type") == "object" and "propertyNames" not in schema:
        schema["propertyNames"] = {"pattern": TEXT_PATTERN}  # keys are text too
    for key, value in list(schema.items()):
        if key not in ("examples", "example", "default", "const", "enum"):
            _text_without_nul(value)


# The headers of every webhook delivery (Standard Webhooks).
WEBHOOK_HEADERS: tuple[tuple[str, str], ...] = (
    (
        "webhook-id",
        "The message's id (`msg_…`): the same on every retry of one message; a receiver "
        "that has seen it already drops the duplicate.",
    ),
    ("webhook-timestamp", "When this attempt was signed, in whole seconds since 1970 (UTC)."),
    (
        "webhook-signature",
        "`v1,<base64 HMAC-SHA256 of id.timestamp.body>`, one per valid secret, space "
        "separated (two during a secret rotation's grace period).",
    ),
)
WEBHOOK_RECEIVER_ANSWERS: dict[str, dict[str, str]] = {
    "2XX": {"description": "Delivered."},
    "410": {"description": "Gone: the endpoint is disabled; nothing more is sent to it."},
    "default": {
        "description": "Any other answer, a timeout (15 s) or an error: tried again. Attempts "
        f"go {retry_schedule_text()}, later where the answer's `Retry-After` asks; then the "
        "message is failed (a replay sends it again)."
    },
}


def describe_webhooks(
    document: dict[str, Any], event_types: dict[str, str], schema_of: Callable[[str], Any]
) -> dict[str, Any]:
    """Add the events Userdesk POSTs to an endpoint as OpenAPI 3.1's `webhooks`, one entry
    per type of EVENT_TYPES (type -> when it is sent), its body's schema from SCHEMA_OF
    (self-contained: no `$ref`, which would resolve against this document)."""
    parameters = [
        {
            "name": name,
            "in": "header",
            "required": True,
            "description": text,
            "schema": {"type": "string"},
        }
        for name, text in WEBHOOK_HEADERS
    ]
    webhooks: dict[str, Any] = {}
    for event_type, when in event_types.items():
        webhooks[event_type] = {
            "post": {
                "summary": event_type,
                "description": when,
                "operationId": f"webhook_{event_type.replace('.', '_')}",
                "tags": ["webhooks"],
                "security": [],
                "parameters": parameters,
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": schema_of(event_type)}},
                },
                "responses": WEBHOOK_RECEIVER_ANSWERS,
            }
        }
    document["webhooks"] = webhooks
    return document


def install(app: FastAPI) -> None:
    """Make APP's /openapi.json the rewritten document (built once, on first request),
    with the webhooks an endpoint receives."""
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = describe_errors(generate())
            app.openapi_schema = describe_webhooks(
                document, catalog.EVENT_TYPES, catalog.event_schema
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
