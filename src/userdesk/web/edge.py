"""The edge of the app: what every answer goes through on its way out, in one pure-ASGI
middleware, the outermost of ours (each layer of middleware costs every request a call
and a wrapped `send`; these were four).

On the first message of an answer it adds, in this order, the RateLimit headers of the
quotas the request met (web.ratelimit), logs a refusal (web.security_log), adds the
Server-Timing header when it is on (web.timing) and the security headers the answer did
not set itself (web.security). An unexpected exception before the answer started is
answered with a 500 that carries the security headers only.
"""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from userdesk.auth import throttle
from userdesk.web import ratelimit, security, security_log, timing

# The paths whose security headers differ from a page's (see security.headers_for).
_OWN_HEADERS = (*security.TOKEN_PAGES, *security.CACHEABLE)


class EdgeMiddleware:
    """Rate-limit headers, the refusal log, Server-Timing (if SERVER_TIMING) and the
    security headers (HSTS if HTTPS), and the 500 of an unexpected exception."""

    def __init__(self, app: ASGIApp, *, https: bool, server_timing: bool) -> None:
        self.app = app
        self.https = https
        self.server_timing = server_timing
        self._page = security.headers_for("/", https=https)  # the common case, built once

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = str(scope.get("path", ""))
        if path.startswith(_OWN_HEADERS):
            added = security.headers_for(path, https=self.https)
        else:
            added = self._page
        logging_refusals = security_log.logging_refusals()
        timed_from = time.perf_counter() if self.server_timing else None
        started = False

        async def send_with_security_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = list(message.get("headers", []))
                security.add_missing(headers, added)
                message = {**message, "headers": headers}
            await send(message)

        try:
            with throttle.collecting() as met:

                async def send_at_edge(message: Message) -> None:
                    nonlocal started
                    if message["type"] == "http.response.start":
                        started = True
                        headers = list(message.get("headers", []))
                        headers.extend(ratelimit.limit_headers(met))
                        status = int(message["status"])
                        if logging_refusals and security_log.refused(status, scope["path"]):
                            security_log.log_refusal(scope, status)
                        if timed_from is not None:
                            headers.append(timing.server_timing(timed_from))
                        security.add_missing(headers, added)
                        message = {**message, "headers": headers}
                    await send(message)

                await self.app(scope, receive, send_at_edge)
        except Exception:
            if not started:
                await security.server_error(path, send_with_security_headers)
            raise  # Starlette sees the answer started and leaves it; the server logs it
