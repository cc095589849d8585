"""/api/v1/docs: Swagger UI for the API's OpenAPI document, served from this site.

FastAPI's own page loads Swagger UI from a CDN and starts it with an inline script, which
the Content-Security-Policy forbids (and which stays blank offline). Here Swagger UI comes
from the npm registry through package-lock.json (`make setup` copies it into
/static/vendor/) and starts from /static/js/api-docs.js, under the policy every page has.

It is drawn in the reader's color scheme as every console page is: a signed-in admin's
choice on /me written on <html>, else (or on "System") the device's, applied by
/static/js/color-scheme.js; /static/css/api-docs.css darkens Swagger UI's light theme.

Swagger UI's markup is mended for everyone (axe-core judges this page as every other, in
tests/browser): /static/css/api-docs.css draws its faint colors darker, and
/static/js/api-docs.js names its controls, orders its headings and landmarks and unnests
its summary buttons each time it draws. The page is aria-busy until the document is drawn.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from userdesk.users.models import COLOR_SCHEMES
from userdesk.web.api import PREFIX
from userdesk.web.deps import OptionalAuth

router = APIRouter()

HEAD = """<!doctype html>
<html lang="en" data-color-scheme="{scheme}"{theme}>
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Userdesk API</title>
  <link rel="icon" href="/favicon.ico">
  <link rel="stylesheet" href="/static/vendor/swagger-ui.css">
  <link rel="stylesheet" href="/static/css/api-docs.css">
"""
SYSTEM_SCHEME = '  <script src="/static/js/color-scheme.js"></script>\n'
REST = f"""  <script src="/static/vendor/swagger-ui-bundle.js" defer></script>
  <script src="/static/js/api-docs.js" defer></script>
</head>
<body>
  <div id="swagger-ui" data-openapi-url="{PREFIX}/openapi.json" aria-busy="true"></div>
</body>
</html>
"""


def page(scheme: str) -> str:
    """The docs page drawn in SCHEME: 'light', 'dark', or 'system' (the device's)."""
    if scheme not in COLOR_SCHEMES or scheme == "system":
        return HEAD.format(scheme="system", theme="") + SYSTEM_SCHEME + REST
    return HEAD.format(scheme=scheme, theme=f' data-bs-theme="{scheme}"') + REST


@router.get(f"{PREFIX}/docs", include_in_schema=False)
async def api_docs(request: Request, _auth: OptionalAuth) -> HTMLResponse:
    """The API's documentation page, in the signed-in reader's colors (web.deps puts
    their choice on the request)."""
    return HTMLResponse(page(str(getattr(request.state, "color_scheme", "system"))))
