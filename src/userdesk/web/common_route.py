"""A route for a hot path's common request, answered ahead of FastAPI's routing.

FastAPI finds a route among the included routers and solves its dependencies and parameters
on every request; on the Users list (the API's and the console's) that was a fifth to a
quarter of the request's CPU. A `CommonRoute` matches one path's common request alone (GET,
parameters that need no checking), ahead of every other route of the app (web.app puts it
first), and answers it as the declared route would, calling what that route's dependencies
call. Any other request (HEAD, a parameter to refuse or to coerce, a made-up scope) goes on
to the declared route, whose document, checks and words it keeps; the tests of each
subclass compare both routes' answers.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from sqlalchemy.orm import Session
from starlette._utils import get_route_path
from starlette.responses import Response
from starlette.routing import Match, Route
from starlette.types import Receive, Scope, Send

from userdesk.web.deps import request_unit

_GIVEN = "userdesk.common_route"  # the scope's key for what `matches` read


class CommonRoute(Route):
    """GET PATH's common request, told apart by `given` and answered by `answer` within
    the request's unit of work (`web.deps.request_unit`), as the declared route is."""

    def __init__(self, path: str, name: str) -> None:
        super().__init__(path, self._never, name=name, include_in_schema=False)
        self.methods = {"GET"}  # not HEAD: the declared route says how it answers that

    def given(self, request: Request) -> Any | None:
        """What `answer` needs of REQUEST when it is the common one, else None."""
        raise NotImplementedError

    async def answer(self, request: Request, db: Session, given: Any) -> Response:
        """The declared route's answer to REQUEST, which `given` read as GIVEN."""
        raise NotImplementedError

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if (
            scope["type"] != "http"
            or scope["method"] != "GET"
            or "headers" not in scope  # a scope made up to find a path's methods (web.problems)
            or get_route_path(scope) != self.path
        ):
            return Match.NONE, {}
        given = self.given(Request(scope))
        if given is None:
            return Match.NONE, {}
        return Match.FULL, {"endpoint": self.endpoint, "path_params": {}, _GIVEN: given}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive, send)
        async with request_unit(request) as db:
            response = await self.answer(request, db, scope[_GIVEN])
        await response(scope, receive, send)

    async def _never(self, request: Request) -> Response:  # pragma: no cover - handle's
        raise AssertionError("answered by handle")
