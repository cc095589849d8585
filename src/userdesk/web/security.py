"""Security headers on every response: what the browser may load, frame and send on.

The pages carry no inline script and no `eval` (htmx's `hx-on` is not used; behaviour
lives in /static/js), so scripts come from this site only. Style attributes stay allowed
(`style-src-attr`): they cannot run code, and partials set widths with them; style sheets
and <style> elements come from this site only.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "style-src-attr 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
HSTS = "max-age=31536000"
# Pages that load their scripts from elsewhere (FastAPI's Swagger UI) keep the other
# headers but no CSP.
WITHOUT_CSP = ("/api/v1/docs",)


class SecurityHeadersMiddleware:
    """Adds CSP, Referrer-Policy, X-Content-Type-Options, X-Frame-Options and, when HTTPS
    is set, Strict-Transport-Security, unless the response set its own."""

    def __init__(self, app: ASGIApp, *, https: bool) -> None:
        self.app = app
        self.https = https

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        added = [
            (b"referrer-policy", b"strict-origin-when-cross-origin"),
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
        ]
        if not str(scope.get("path", "")).startswith(WITHOUT_CSP):
            added.append((b"content-security-policy", CONTENT_SECURITY_POLICY.encode()))
        if self.https:
            added.append((b"strict-transport-security", HSTS.encode()))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers.extend(h for h in added if h[0] not in present)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
