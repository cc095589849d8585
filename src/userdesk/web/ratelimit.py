"""RateLimit-Policy and RateLimit headers (draft-ietf-httpapi-ratelimit-headers-11) on the
answers of rate-limited requests: sign-in, signup, password reset, verification emails.

The throttle notes the quotas a request met (`auth.throttle.collecting()`); this middleware
writes them out, on a success as on a 429:

    RateLimit-Policy: "signin.ip";q=50;w=600, "signin.email";q=10;w=600
    RateLimit: "signin.ip";r=49;t=600, "signin.email";r=9;t=600

`q` is the quota and `w` its window in seconds; `r` what is left of it and `t` in how many
seconds a unit comes back. Counts that other clients' attempts add to are told only when
they refuse (auth.throttle.Policy.announce).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from userdesk.auth import throttle


def policy_header(quotas: list[throttle.Quota]) -> str:
    return ", ".join(f'"{q.name}";q={q.quota};w={q.window}' for q in quotas)


def limit_header(quotas: list[throttle.Quota]) -> str:
    return ", ".join(f'"{q.name}";r={q.remaining};t={q.reset}' for q in quotas)


class RateLimitHeadersMiddleware:
    """Adds the headers when the request met a rate limit."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        with throttle.collecting() as met:

            async def send_with_limits(message: Message) -> None:
                if message["type"] == "http.response.start" and met:
                    headers = list(message.get("headers", []))
                    headers.append((b"ratelimit-policy", policy_header(met).encode()))
                    headers.append((b"ratelimit", limit_header(met).encode()))
                    message = {**message, "headers": headers}
                await send(message)

            await self.app(scope, receive, send_with_limits)
