"""Security headers on every response: what the browser may load, frame, keep and send on.

The pages carry no inline script and no `eval` (htmx's `hx-on` is not used; behaviour
lives in /static/js), so scripts come from this site only. Style attributes stay allowed
(`style-src-attr`): they cannot run code, and partials set widths with them; style sheets
and <style> elements come from this site only. The API's documentation (Swagger UI, from
the npm registry, served from /static/vendor) runs under the same policy.

Nothing but the static assets may be stored by a browser or a proxy (`Cache-Control:
no-store`): pages of a signed-in person, API answers and CSV exports name users, and a
token page's address is a secret. Token pages also send no Referer on.

The headers go on error responses too. Starlette answers an unexpected exception from
its outermost layer, outside any middleware of ours; so web.edge, the outermost of ours,
answers the 500 itself (problem details under /api/ and /scim/, a page elsewhere)
and lets the exception go on to be logged.
"""

from __future__ import annotations

from starlette.types import Send

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
        "base-uri 'none'",  # no page uses <base>: none may (ASVS 3.4.3)
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
HSTS = "max-age=31536000; includeSubDomains"  # a year, subdomains too (ASVS 3.4.1, L2)
# Pages whose address holds a secret token (web.access_log redacts the same ones).
TOKEN_PAGES = (
    "/invite/",
    "/verify/",
    "/email/confirm/",
    "/password/reset/",
    "/impersonate/",
    "/signup/confirm/",
)
# What browsers and proxies may keep: the static assets (they name nobody).
CACHEABLE = ("/static/",)
# The faces that answer JSON (errors as problems), and the rest pages.
JSON_FACES = ("/api/", "/scim/")

_COMMON: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
)
_REFERRER = (b"referrer-policy", b"strict-origin-when-cross-origin")
_NO_REFERRER = (b"referrer-policy", b"no-referrer")
_NO_STORE = (b"cache-control", b"no-store")
_HSTS = (b"strict-transport-security", HSTS.encode())

_SERVER_ERROR_PROBLEM = (
    b'{"type":"about:blank","title":"Internal Server Error","status":500,'
    b'"detail":"Something went wrong on our side; it has been logged.",'
    b'"code":"server.error"}'
)
_SERVER_ERROR_PAGE = (
    b'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
    b"<title>Something went wrong \xc2\xb7 Userdesk</title>"
    b'<link rel="stylesheet" href="/static/vendor/tabler.min.css"></head>'
    b'<body><div class="page page-center"><div class="container-tight py-4">'
    b'<div class="empty"><div class="empty-header">500</div>'
    b'<p class="empty-title">Something went wrong</p>'
    b'<p class="empty-subtitle text-secondary">It has been logged. Please try again.</p>'
    b'<div class="empty-action"><a href="/" class="btn btn-primary">Go home</a></div>'
    b"</div></div></div></body></html>\n"
)


def headers_for(path: str, *, https: bool) -> tuple[tuple[bytes, bytes], ...]:
    """The headers a response to PATH carries unless it set them itself."""
    added = [*_COMMON, _NO_REFERRER if path.startswith(TOKEN_PAGES) else _REFERRER]
    if not path.startswith(CACHEABLE):
        added.append(_NO_STORE)
    if https:
        added.append(_HSTS)
    return tuple(added)


def add_missing(headers: list[tuple[bytes, bytes]], added: tuple[tuple[bytes, bytes], ...]) -> None:
    """Append to HEADERS (a response's, names in lower case) those of ADDED it lacks."""
    present = {name.lower() for name, _ in headers}
    headers.extend(h for h in added if h[0] not in present)


async def server_error(path: str, send: Send) -> None:
    if path.startswith(JSON_FACES):
        body, media_type = _SERVER_ERROR_PROBLEM, b"application/problem+json"
    else:
        body, media_type = _SERVER_ERROR_PAGE, b"text/html; charset=utf-8"
    await send(
        {
            "type": "http.response.start",
            "status": 500,
            "headers": [
                (b"content-type", media_type),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})
