"""Input checked at the edge, once for every route of the three faces.

`PathId` and `QueryId` bound an id in a path or a query (and say so in the OpenAPI
document). `RefuseUnsafeTextMiddleware` refuses a NUL or a lone surrogate anywhere in the
query string, the path, a form or a JSON body, naming the field, before any route, model
or service sees it: PostgreSQL refuses a NUL in text, SQLite's full-text index errs on it,
and no encoding stores half of a UTF-16 pair.

It is an ASGI middleware rather than a dependency so that a request with nothing to
refuse costs a search of its raw bytes (`%00`, `\\u`) and nothing more: a dependency of
every route cost the Users list tens of microseconds. Only JSON can carry a lone
surrogate (Starlette decodes forms and URLs with replacement); a multipart body is parsed
here only when it holds a NUL, to tell a text field or a file's name (refused) from a
file's content (left to the import, which names the row and the column).
"""

from __future__ import annotations

import email.message
import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import Path, Query
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from userdesk.validation import MAX_ID, text_problem
from userdesk.web.problems import field_errors, problem_response
from userdesk.web.security import JSON_FACES

ID_DESCRIPTION = "An id: an integer from 1 to 2^63 - 1."
PathId = Annotated[int, Path(ge=1, le=MAX_ID, description=ID_DESCRIPTION)]
QueryId = Annotated[int | None, Query(ge=1, le=MAX_ID, description=ID_DESCRIPTION)]

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
SCIM_FACE = "/scim/v2"  # web.scim.PREFIX: refused there as a SCIM error
SCIM_ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
# A request with more bad fields than this is named by its first ones.
PROBLEMS_SHOWN = 10

Problems = dict[str, str]
# Renders the refusal (a message, the fields) to a request that is not the API's.
PageRenderer = Callable[[Request, str, Problems], Awaitable[Response]]


class RefuseUnsafeTextMiddleware:
    """Answers 400, naming each field, a request whose text holds a NUL or a lone surrogate."""

    def __init__(self, app: ASGIApp, *, render_page: PageRenderer) -> None:
        self.app = app
        self.render_page = render_page

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        problems: Problems = {}
        query: bytes = scope.get("query_string", b"")
        if b"%00" in query or b"\x00" in query:
            _check_pairs(query, problems)
        path: str = scope.get("path", "")
        if "\x00" in path:
            _check("path", path, problems)
        if scope["method"] in WRITE_METHODS and not problems:
            kind = _content_type(scope)
            if kind in ("application/json", "application/x-www-form-urlencoded") or (
                kind.endswith("+json") or kind == "multipart/form-data"
            ):
                body = await _read_body(receive)
                if body is None:
                    return  # the client left
                await _check_body(scope, kind, body, _replay(body, receive), problems)
                receive = _replay(body, receive)  # the app reads the body as it came
        if not problems:
            await self.app(scope, receive, send)
            return
        shown = dict(list(problems.items())[:PROBLEMS_SHOWN])
        response = await self._refusal(scope, shown)
        await response(scope, receive, send)

    async def _refusal(self, scope: Scope, problems: Problems) -> Response:
        detail = f"{', '.join(problems)}: {next(iter(problems.values()))}."
        if scope.get("path", "").startswith(SCIM_FACE):  # a SCIM error (RFC 7644 §3.12)
            body = {"schemas": [SCIM_ERROR], "status": "400", "scimType": "invalidValue"}
            return JSONResponse({**body, "detail": detail}, 400, media_type="application/scim+json")
        if scope.get("path", "").startswith(JSON_FACES):
            return problem_response(400, "invalid_input", detail, errors=field_errors(problems))
        return await self.render_page(Request(scope), detail, problems)


def _content_type(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            message = email.message.Message()
            message["content-type"] = value.decode("latin-1")
            return message.get_content_type()
    return ""


async def _read_body(receive: Receive) -> bytes | None:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that gives BODY once, then waits on the client (for its disconnect)."""
    given = False

    async def replayed() -> Message:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


async def _check_body(
    scope: Scope, kind: str, body: bytes, receive: Receive, problems: Problems
) -> None:
    if kind == "application/x-www-form-urlencoded":
        if b"%00" in body or b"\x00" in body:
            _check_pairs(body, problems)
    elif kind == "multipart/form-data":
        if b"\x00" in body:
            form = await Request(scope, receive).form()
            for key, value in form.multi_items():
                if isinstance(value, UploadFile):
                    _check(f"{key}.filename", value.filename or "", problems)
                else:
                    _check(key, value, problems)
            await form.close()
    elif b"\\u" in body:  # JSON carries a NUL or a surrogate only escaped
        try:
            data = json.loads(body)
        except ValueError:
            return  # not JSON: the route's own parsing says so
        _walk(data, "", problems)


def _check_pairs(raw: bytes, problems: Problems) -> None:
    """The fields of a query string or a form body, decoded as Starlette decodes them."""
    for key, value in parse_qsl(raw.decode("latin-1"), keep_blank_values=True):
        _check(key, value, problems)


def _walk(value: Any, where: str, problems: Problems) -> None:
    if isinstance(value, str):
        _check(where or "body", value, problems)
    elif isinstance(value, dict):
        for key, item in value.items():
            name = f"{where}.{key}" if where else str(key)
            _check(name, str(key), problems)
            _walk(item, name, problems)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _walk(item, f"{where}[{index}]", problems)


def _check(field: str, value: str, problems: Problems) -> None:
    if len(problems) <= PROBLEMS_SHOWN and (problem := text_problem(value)):
        problems.setdefault(_printable(field), problem)


def _printable(field: str) -> str:
    """A field's name fit to show (a name may itself hold what it is refused for)."""
    return field if text_problem(field) is None else ascii(field)[1:-1]
