"""Writes the SCIM request log (userdesk.scim.request_log): a pure-ASGI middleware of the
/scim/v2 app.

Once the answer has gone out, one row: the method, the path (`logged_path`), the status,
an error's scimType and detail (read from the SCIM error body, at most ERROR_BODY_MAX
bytes of it), the time taken. Rows are written in a short transaction of their own, shared
by the requests that end together (a group commit): the first to end waits its turn among
the writers, and the rows of those that end meanwhile go in its transaction; each request
ends once its row is written. Alone, a request writes its row in a transaction of one;
provisioning thousands of users over a few connections takes one log transaction for
several requests instead of one each. The request's
token is the one `provisioning_actor` authenticated (`TOKEN_KEY` in the request's
state); a request without one is not logged (it failed authentication, and the security
log has it), except a 404 or 405 sent with a valid token, whose route solved no
dependency: a wrong base URL in the provider is worth seeing. A failure to write is a
log line, never a failed request. Bodies and headers are never read into the log.

A request that writes may log itself in its own transaction instead (`log_in`: a SCIM
POST /Users created with others, web.scim), its row then written with its change; the
middleware then writes none for it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import orjson
from sqlalchemy.orm import Session
from starlette.datastructures import State
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from userdesk.db.session import Database
from userdesk.errors import NotAuthenticated
from userdesk.scim import request_log, tokens

log = logging.getLogger("userdesk.scim")

# request.state[TOKEN_KEY]: (token id, organization id) of the request's SCIM token.
TOKEN_KEY = "scim_token"  # noqa: S105 - a key, not a secret
STARTED_KEY = "scim_started"  # request.state[STARTED_KEY]: when the middleware got it
LOGGED_KEY = "scim_logged"  # request.state[LOGGED_KEY]: its row is written (log_in)
ERROR_BODY_MAX = 8192  # bytes of an error's body read for its scimType and detail
UNROUTED = frozenset({404, 405})


class RequestLogMiddleware:
    """Logs each request of the /scim/v2 app made with a valid token, after answering."""

    def __init__(self, app: ASGIApp, *, state: State) -> None:
        self.app = app
        self.state = state
        self._rows: list[request_log.Logged] = []  # rows waiting for the next log transaction
        self._written: asyncio.Future[None] | None = None  # the waiting transaction's end

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        shared: dict[str, Any] = scope.setdefault("state", {})
        shared[STARTED_KEY] = started
        status = 500  # an exception before the answer started
        error_body = bytearray()

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif status >= 400 and len(error_body) <= ERROR_BODY_MAX:
                error_body.extend(message.get("body", b"")[: ERROR_BODY_MAX + 1])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            duration_ms = round((time.perf_counter() - started) * 1000)
            try:
                if not shared.get(LOGGED_KEY):
                    await self._write(scope, shared, status, bytes(error_body), duration_ms)
            except Exception:
                log.warning("the SCIM request log was not written", exc_info=True)

    async def _write(
        self, scope: Scope, shared: dict[str, Any], status: int, error_body: bytes, ms: int
    ) -> None:
        known = shared.get(TOKEN_KEY)
        secret = None
        if known is None:
            if status not in UNROUTED:
                return  # authentication failed (or never ran): no organization to log for
            secret = _bearer(scope)
            if secret is None:
                return
        scim_type, detail = _error_of(error_body) if status >= 400 else (None, None)
        if known is None:
            database: Database = self.state.database
            async with database.writing() as db:
                try:
                    token, _ = tokens.authenticate(db, secret=secret or "")
                except NotAuthenticated:
                    return
                known = (token.id, token.organization_id)
        await self._logged(_row(scope, known, status, scim_type, detail, ms))

    async def _logged(self, row: request_log.Logged) -> None:
        """Write ROW with the rows of the requests ending meanwhile (see the module's
        docstring); return once it is written (or failed to be: a log line)."""
        self._rows.append(row)
        if self._written is not None:  # a transaction waits for its turn: ROW goes in it
            await asyncio.shield(self._written)
            return
        written = self._written = asyncio.get_running_loop().create_future()
        try:
            database: Database = self.state.database
            async with database.writing() as db:
                rows, self._rows, self._written = self._rows, [], None
                request_log.record_many(db, rows)
        finally:
            if self._written is written:  # failed before taking the rows: they are lost
                self._rows, self._written = [], None
            written.set_result(None)


def log_in(db: Session, scopes: list[Scope], status: int) -> None:
    """Write the rows of SCOPES' requests (each answered STATUS, with no error) in DB, the
    requests' own transaction, now (in a savepoint: a failure is a log line, and leaves
    the rows to the middleware), and tell the middleware they are written. A request
    whose token is not known is left to the middleware."""
    now = time.perf_counter()
    shared = [scope.setdefault("state", {}) for scope in scopes]
    known = [
        (scope, state) for scope, state in zip(scopes, shared, strict=True) if state.get(TOKEN_KEY)
    ]
    try:
        with db.begin_nested():
            request_log.record_many(
                db,
                [
                    _row(scope, state[TOKEN_KEY], status, None, None, _ms(state, now))
                    for scope, state in known
                ],
            )
    except Exception:
        log.warning("the SCIM request log was not written with its requests", exc_info=True)
        return
    for _, state in known:
        state[LOGGED_KEY] = True


def _row(
    scope: Scope,
    known: tuple[int, int],
    status: int,
    scim_type: str | None,
    detail: str | None,
    ms: int,
) -> request_log.Logged:
    """The log row of SCOPE's request, made with the token KNOWN (its id, its organization's)."""
    path = str(scope.get("path", ""))
    root = str(scope.get("root_path", ""))
    if root and not path.startswith(root):
        path = root + path
    token_id, organization_id = known
    return request_log.Logged(
        organization_id=organization_id,
        token_id=token_id,
        method=str(scope.get("method", "")),
        path=request_log.logged_path(path, scope.get("query_string", b"").decode("latin-1")),
        status=status,
        scim_type=scim_type,
        detail=detail,
        duration_ms=ms,
    )


def _ms(state: dict[str, Any], now: float) -> int:
    """Milliseconds from when the middleware got the request of STATE to NOW."""
    started: float = state.get(STARTED_KEY, now)
    return round((now - started) * 1000)


def _bearer(scope: Scope) -> str | None:
    """The bearer secret of SCOPE's Authorization header, if it sent one."""
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            kind, _, secret = bytes(value).decode("latin-1").partition(" ")
            if kind.lower() == "bearer" and secret.strip():
                return secret.strip()
    return None


def _error_of(body: bytes) -> tuple[str | None, str | None]:
    """The scimType and detail of a SCIM error BODY (None where it is not one)."""
    if not body or len(body) > ERROR_BODY_MAX:
        return None, None
    try:
        error = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None, None
    if not isinstance(error, dict):
        return None, None
    scim_type, detail = error.get("scimType"), error.get("detail")
    return (
        scim_type if isinstance(scim_type, str) else None,
        detail if isinstance(detail, str) else None,
    )
