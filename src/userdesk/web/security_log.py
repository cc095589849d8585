"""Every refused request in the security log (`userdesk.security_log`): bad input,
no or wrong credentials, a denied permission or CSRF token, a method not allowed, a
rate limit. Logged once, at the edge (web.edge), whichever face or handler refused it.

404 is logged for the API only: a page that does not exist is no attempt at anything,
while an API id that is not there (or not within reach) may be someone probing.
"""

from __future__ import annotations

import logging

from starlette.types import Scope

from userdesk import security_log
from userdesk.web.access_log import redact
from userdesk.web.security import JSON_FACES

LOGGED = frozenset({400, 401, 403, 405, 409, 412, 413, 415, 422, 428, 429})


def refused(status: int, path: str) -> bool:
    return status in LOGGED or (status == 404 and path.startswith(JSON_FACES))


def logging_refusals() -> bool:
    """Whether refusals are logged at all (the security log may be turned down)."""
    return security_log.logger.isEnabledFor(logging.WARNING)


def log_refusal(scope: Scope, status: int) -> None:
    query = scope.get("query_string", b"").decode("latin-1")
    target = scope["path"] + (f"?{query}" if query else "")
    client = scope.get("client")
    state = scope.get("state") or {}
    security_log.event(
        "request_refused",
        outcome=str(status),
        level=logging.WARNING,
        method=scope["method"],
        path=redact(target),
        ip=client[0] if client else None,
        user_id=state.get("actor_user_id"),
        api_key_id=state.get("actor_api_key_id"),
    )
