"""/api/v1/docs: Swagger UI for the API's OpenAPI document, served from this site.

FastAPI's own page loads Swagger UI from a CDN and starts it with an inline script, which
the Content-Security-Policy forbids (and which stays blank offline). Here Swagger UI comes
from the npm registry through package-lock.json (`make setup` copies it into
/static/vendor/) and starts from /static/js/api-docs.js, under the policy every page has.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from userdesk.web.api import PREFIX

router = APIRouter()

PAGE = f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Userdesk API</title>
  <link rel="stylesheet" href="/static/vendor/swagger-ui.css">
  <script src="/static/vendor/swagger-ui-bundle.js" defer></script>
  <script src="/static/js/api-docs.js" defer></script>
</head>
<body>
  <div id="swagger-ui" data-openapi-url="{PREFIX}/openapi.json"></div>
</body>
</html>
"""


@router.get(f"{PREFIX}/docs", include_in_schema=False)
async def api_docs() -> HTMLResponse:
    """The API's documentation page."""
    return HTMLResponse(PAGE)
