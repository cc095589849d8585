"""/console/settings/churn: the form of what churn means for the organization, saved by
the same service as PUT /api/v1/churn/definition (churn.settings.change: it checks the
definition, names the field at fault, and audits the change)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from userdesk.churn import settings as churn_settings
from userdesk.churn.settings import ChurnDefinitionWrite
from userdesk.errors import InvalidInput
from userdesk.web.console.routes import _settings
from userdesk.web.deps import ConsoleAuth, DbSession

router = APIRouter(prefix="/console/settings", tags=["console"], include_in_schema=False)


@router.post("/churn", response_class=HTMLResponse)
async def save_churn_definition(
    request: Request,
    db: DbSession,
    auth: ConsoleAuth,
    kind: Annotated[str, Form()] = "inactivity",
    days: Annotated[str, Form()] = "30",
    activity_types: Annotated[str, Form()] = "",
    event_type: Annotated[str, Form()] = "",
    scope_type: Annotated[str, Form()] = "",
    scope_days: Annotated[str, Form()] = "30",
) -> Response:
    """Save the definition; the settings page again, errors beside their fields, when the
    service refuses it (nothing is saved then)."""
    sent: dict[str, Any] = {
        "kind": kind,
        "days": days.strip(),
        "activity_types": [t.strip() for t in activity_types.split(",") if t.strip()],
        "event_type": event_type.strip() or None,
        "scope_type": scope_type.strip() or None,
        "scope_days": scope_days.strip(),
    }
    errors = {
        f"churn_definition.{name}": f"'{sent[name]}' is not a whole number of days"
        for name in ("days", "scope_days")
        if not (sent[name].isascii() and sent[name].isdigit() and len(sent[name]) <= 6)
    }
    if not errors:
        try:
            churn_settings.change(
                db,
                actor=auth.actor,
                given=ChurnDefinitionWrite(
                    **{**sent, "days": int(sent["days"]), "scope_days": int(sent["scope_days"])}
                ),
            )
        except InvalidInput as exc:
            errors = dict(exc.fields)
    if errors:
        return _settings(request, db, auth, errors=errors, status_code=400, churn_form=sent)
    return RedirectResponse("/console/settings?saved=1#churn-definition", status_code=303)
