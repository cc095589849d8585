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
signature headers. And the SCIM 2.0 service provider mounted at /scim/v2 (web.scim, its
own app): its operations, tagged SCIM, in `application/scim+json`, with the SCIM token as
their bearer scheme and SCIM errors (`scimType`) as their error bodies (describe_scim).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from starlette.datastructures import State

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


SCIM_MEDIA_TYPE = "application/scim+json"
SCIM_PREFIX = "/scim/v2"
SCIM_ERROR_SCHEMA: dict[str, Any] = {
    "title": "ScimError",
    "description": "RFC 7644 §3.12: a SCIM error, its `scimType` on a 400 or 409.",
    "type": "object",
    "required": ["schemas", "status"],
    "properties": {
        "schemas": {"type": "array", "items": {"type": "string"}},
        "status": {"type": "string", "description": "The HTTP status, as text."},
        "scimType": {
            "type": "string",
            "description": "invalidFilter, invalidSyntax, invalidValue, invalidPath, "
            "noTarget, uniqueness, mutability, tooMany, invalidCursor, expiredCursor …",
        },
        "detail": {"type": "string"},
    },
}
SCIM_RESOURCE_SCHEMA: dict[str, Any] = {
    "title": "ScimResource",
    "description": "A SCIM resource (RFC 7643: a User, a Group, a ResourceType, a Schema, "
    "the ServiceProviderConfig) or message (ListResponse, PatchOp, SearchRequest, "
    "BulkRequest, BulkResponse), named by its `schemas`. GET /scim/v2/Schemas lists the "
    "attributes kept, the organization's custom fields as the extension "
    "`urn:ietf:params:scim:schemas:extension:userdesk:2.0:User`.",
    "type": "object",
    "required": ["schemas"],
    "properties": {"schemas": {"type": "array", "items": {"type": "string"}}},
}
SCIM_MEANINGS: dict[int, str] = {
    400: "Bad input: a SCIM error with its scimType (invalidFilter, invalidValue …).",
    401: "No SCIM token, or a revoked one (an API key is not accepted here).",
    403: "The token may not change this user (one who holds more than provisioning).",
    404: "No such resource within the organization.",
    409: "A taken userName or group name (scimType uniqueness), or a clash.",
    412: "`If-Match` is not the resource's current version (`meta.version`).",
    413: "The body is larger than the bulk maxPayloadSize.",
}
# The query parameters of a SCIM list (RFC 7644 §3.4.2, RFC 9865's cursor).
SCIM_LIST_PARAMETERS: tuple[tuple[str, dict[str, Any], str], ...] = (
    ("filter", {"type": "string", "maxLength": 4096}, "A SCIM filter (RFC 7644 §3.4.2.2)."),
    ("startIndex", {"type": "integer"}, "Index paging: the 1-based index of the first."),
    ("count", {"type": "integer"}, "How many on a page (100 unless given, at most 1,000)."),
    ("cursor", {"type": "string"}, "Cursor paging (RFC 9865): empty for the first page."),
    ("sortBy", {"type": "string"}, "The attribute the list is sorted by."),
    ("sortOrder", {"type": "string", "enum": ["ascending", "descending"]}, "The order."),
    ("attributes", {"type": "string"}, "The attributes to answer, separated by commas."),
    ("excludedAttributes", {"type": "string"}, "The attributes to leave out."),
)


def describe_scim(document: dict[str, Any], scim_app: FastAPI) -> dict[str, Any]:
    """Add SCIM_APP's operations (the /scim/v2 app) to DOCUMENT, tagged SCIM: each takes
    and answers `application/scim+json`, authenticated by the SCIM token (bearer), its
    errors SCIM errors."""
    generated = get_openapi(title="SCIM", version="2.0", routes=scim_app.routes)
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas["ScimError"] = SCIM_ERROR_SCHEMA
    schemas["ScimResource"] = SCIM_RESOURCE_SCHEMA
    components.setdefault("securitySchemes", {})["scimToken"] = {
        "type": "http",
        "scheme": "bearer",
        "description": "A SCIM token from Settings > Provisioning or `userdesk scim-token "
        "create` (only at /scim/v2, which accepts nothing else).",
    }
    resource = {SCIM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/ScimResource"}}}
    error = {SCIM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/ScimError"}}}
    paths = document.setdefault("paths", {})
    for path, item in generated.get("paths", {}).items():
        for method, operation in item.items():
            if method not in METHODS:
                continue
            operation["tags"] = ["SCIM"]
            operation["operationId"] = f"scim_{operation.get('operationId', method)}"
            operation["security"] = [{"scimToken": []}]
            if method == "get" and not path.endswith("}") and path in ("/Users", "/Groups"):
                operation["parameters"] = [
                    {"name": n, "in": "query", "required": False, "schema": t, "description": d}
                    for n, t, d in SCIM_LIST_PARAMETERS
                ]
            if method in ("post", "put", "patch"):
                operation["requestBody"] = {"required": True, "content": resource}
            statuses = [400, 401, 403]
            if "{" in path:
                statuses.append(404)
            if method in WRITES:
                statuses += [409, 412] if "{" in path else [409, 413]
            success = {"post": "201", "delete": "204"}.get(method, "200")
            if path.endswith(".search") or path == "/Bulk":
                success = "200"
            answers: dict[str, Any] = {
                success: {"description": "Done."}
                if success == "204"
                else {"description": "The resource or message.", "content": resource}
            }
            for status in sorted(statuses):
                answers[str(status)] = {"description": SCIM_MEANINGS[status], "content": error}
            operation["responses"] = answers
        paths[SCIM_PREFIX + path] = item
    return document


def install(app: FastAPI) -> None:
    """Make APP's /openapi.json the rewritten document (built once, on first request),
    with the webhooks an endpoint receives."""
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            from userdesk.web.scim import create_scim_app  # not on top: scim2-models, 8 MB

            document = describe_errors(generate())
            document = describe_scim(document, create_scim_app(State()))
            app.openapi_schema = describe_webhooks(
                document, catalog.EVENT_TYPES, catalog.event_schema
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
