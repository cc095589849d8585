"""/console/settings/webhooks: the organization's webhook endpoints, what was sent to each,
and sending it again. The same service calls as /api/v1/webhooks; a secret is shown on the
page that answers its creation or rotation, and never again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from userdesk.db.base import utcnow
from userdesk.errors import Conflict, InvalidInput
from userdesk.web.console.pages import render
from userdesk.web.deps import ConsoleAuth, DbSession, SettingsDep
from userdesk.web.inputs import PathId
from userdesk.webhooks import catalog
from userdesk.webhooks import service as webhooks
from userdesk.webhooks.models import WebhookEndpoint
from userdesk.webhooks.schemas import (
    MESSAGE_STATUSES,
    WebhookEndpointCreate,
    WebhookEndpointUpdate,
)

router = APIRouter(prefix="/console/settings/webhooks", tags=["console"], include_in_schema=False)

BASE = "/console/settings/webhooks"
NO_STORE = {"Cache-Control": "no-store"}
# What a redirect's ?done= says on the endpoint's page.
DONE = {
    "saved": "Saved.",
    "paused": "Paused: messages wait until it is resumed.",
    "resumed": "Resumed: waiting messages go out now.",
    "test": "A test event is on its way: it shows below once the worker has sent it.",
    "resent": "The message goes out again now, under the same webhook-id.",
    "replayed": "{replayed} failed message(s) go out again now.",
}
EventTypes = Annotated[list[str], Form()]


def _list_page(
    request: Request,
    db: DbSession,
    auth: ConsoleAuth,
    *,
    form: dict[str, object] | None = None,
    errors: dict[str, str] | None = None,
    problem: str | None = None,
    status_code: int = 200,
) -> Response:
    endpoints = webhooks.list_endpoints(db, actor=auth.actor)
    stats = webhooks.stats_of(db, actor=auth.actor, endpoint_ids=[e.id for e in endpoints])
    return render(
        request,
        "console/webhooks.html",
        auth,
        db,
        status_code=status_code,
        endpoints=endpoints,
        stats=stats,
        event_types=catalog.EVENT_TYPES,
        form=form or {"url": "", "description": "", "event_types": []},
        errors=errors or {},
        problem=problem,
        deleted=request.query_params.get("deleted"),
        schedule=webhooks.retry_schedule_text(),
        nav="webhooks",
    )


@router.get("", response_class=HTMLResponse)
async def webhooks_page(request: Request, db: DbSession, auth: ConsoleAuth) -> Response:
    """The endpoints with their counts, and the form to add one."""
    return _list_page(request, db, auth)


@router.post("", response_class=HTMLResponse)
async def add_webhook(
    request: Request,
    db: DbSession,
    auth: ConsoleAuth,
    settings: SettingsDep,
    url: Annotated[str, Form()] = "",
    description: Annotated[str, Form()] = "",
    event_types: EventTypes = [],  # noqa: B006 - FastAPI copies a default
) -> Response:
    """Add an endpoint; the answer shows its secret, once."""
    data = WebhookEndpointCreate(
        url=url.strip(), description=description.strip(), event_types=event_types
    )
    form: dict[str, object] = {"url": url, "description": description, "event_types": event_types}
    try:
        created = webhooks.create_endpoint(db, actor=auth.actor, settings=settings, data=data)
    except InvalidInput as exc:
        return _list_page(request, db, auth, form=form, errors=exc.fields, status_code=400)
    except Conflict as exc:  # the organization's endpoints are at their most
        return _list_page(request, db, auth, form=form, problem=exc.message, status_code=409)
    return _secret_page(request, db, auth, created, rotated=False)


def _secret_page(
    request: Request,
    db: DbSession,
    auth: ConsoleAuth,
    made: webhooks.CreatedEndpoint,
    *,
    rotated: bool,
) -> Response:
    page = render(
        request,
        "console/webhooks_secret.html",
        auth,
        db,
        endpoint=made.endpoint,
        secret=made.secret,
        rotated=rotated,
        nav="webhooks",
    )
    page.headers.update(NO_STORE)
    return page


def _endpoint_page(
    request: Request,
    db: DbSession,
    auth: ConsoleAuth,
    endpoint_id: int,
    *,
    errors: dict[str, str] | None = None,
    problem: str | None = None,
    form: dict[str, object] | None = None,
    status_code: int = 200,
) -> Response:
    endpoint = webhooks.get_endpoint(db, actor=auth.actor, endpoint_id=endpoint_id)
    stats = webhooks.stats_of(db, actor=auth.actor, endpoint_ids=[endpoint.id])[endpoint.id]
    event_type = request.query_params.get("event_type") or None
    status = request.query_params.get("status") or None
    cursor = request.query_params.get("cursor") or None
    filter_problems: dict[str, str] = {}
    try:
        page = webhooks.list_messages(
            db,
            actor=auth.actor,
            endpoint_id=endpoint.id,
            event_type=event_type,
            status=status,
            cursor=cursor,
        )
    except InvalidInput as exc:
        filter_problems = exc.fields
        page = webhooks.list_messages(db, actor=auth.actor, endpoint_id=endpoint.id)
        status_code = 400
    query = {k: v for k, v in {"event_type": event_type, "status": status}.items() if v}
    return render(
        request,
        "console/webhooks_endpoint.html",
        auth,
        db,
        status_code=status_code,
        endpoint=endpoint,
        stats=stats,
        messages=page.items,
        next_cursor=page.next_cursor,
        filters=query,
        filter_problems=filter_problems,
        event_types=catalog.EVENT_TYPES,
        statuses=MESSAGE_STATUSES,
        form=form or _form_of(endpoint),
        errors=errors or {},
        problem=problem,
        done=DONE.get(request.query_params.get("done") or "", "").format(
            replayed=_count(request.query_params.get("replayed"))
        ),
        replay_since=request.query_params.get("since") or _day_ago(),
        schedule=webhooks.retry_schedule_text(),
        now=utcnow(),
        nav="webhooks",
    )


def _count(value: str | None) -> int:
    return int(value) if value and value.isdigit() and len(value) < 10 else 0


def _form_of(endpoint: WebhookEndpoint) -> dict[str, object]:
    return {
        "url": endpoint.url,
        "description": endpoint.description,
        "event_types": list(endpoint.event_types or []),
    }


def _day_ago() -> str:
    """The replay form's default: 24 hours ago, as a datetime-local input takes it."""
    moment = datetime.now(UTC).replace(second=0, microsecond=0)
    return (moment.replace(tzinfo=None) - timedelta(hours=24)).isoformat(timespec="minutes")


def _back(endpoint_id: int, done: str) -> RedirectResponse:
    return RedirectResponse(f"{BASE}/{endpoint_id}?done={done}", status_code=303)


@router.get("/{endpoint_id}", response_class=HTMLResponse)
async def webhook_page(
    request: Request, endpoint_id: PathId, db: DbSession, auth: ConsoleAuth
) -> Response:
    """An endpoint: its settings, counts, and messages (filtered by event type and status)."""
    return _endpoint_page(request, db, auth, endpoint_id)


@router.post("/{endpoint_id}", response_class=HTMLResponse)
async def edit_webhook(
    request: Request,
    endpoint_id: PathId,
    db: DbSession,
    auth: ConsoleAuth,
    settings: SettingsDep,
    url: Annotated[str, Form()] = "",
    description: Annotated[str, Form()] = "",
    event_types: EventTypes = [],  # noqa: B006 - FastAPI copies a default
) -> Response:
    """Save the URL, description and event types."""
    data = WebhookEndpointUpdate(
        url=url.strip(), description=description.strip(), event_types=event_types
    )
    try:
        webhooks.update_endpoint(
            db, actor=auth.actor, settings=settings, endpoint_id=endpoint_id, data=data
        )
    except InvalidInput as exc:
        form: dict[str, object] = {
            "url": url,
            "description": description,
            "event_types": event_types,
        }
        return _endpoint_page(
            request, db, auth, endpoint_id, errors=exc.fields, form=form, status_code=400
        )
    return _back(endpoint_id, "saved")


@router.post("/{endpoint_id}/pause", response_class=HTMLResponse)
async def pause_webhook(endpoint_id: PathId, db: DbSession, auth: ConsoleAuth) -> Response:
    webhooks.pause_endpoint(db, actor=auth.actor, endpoint_id=endpoint_id)
    return _back(endpoint_id, "paused")


@router.post("/{endpoint_id}/resume", response_class=HTMLResponse)
async def resume_webhook(endpoint_id: PathId, db: DbSession, auth: ConsoleAuth) -> Response:
    webhooks.resume_endpoint(db, actor=auth.actor, endpoint_id=endpoint_id)
    return _back(endpoint_id, "resumed")


@router.post("/{endpoint_id}/rotate", response_class=HTMLResponse)
async def rotate_webhook_secret(
    request: Request, endpoint_id: PathId, db: DbSession, auth: ConsoleAuth, settings: SettingsDep
) -> Response:
    """A new secret, shown on the answer once; the previous one signs too for 24 hours."""
    rotated = webhooks.rotate_secret(
        db, actor=auth.actor, settings=settings, endpoint_id=endpoint_id
    )
    return _secret_page(request, db, auth, rotated, rotated=True)


@router.post("/{endpoint_id}/test", response_class=HTMLResponse)
async def send_webhook_test(
    request: Request, endpoint_id: PathId, db: DbSession, auth: ConsoleAuth
) -> Response:
    try:
        webhooks.send_test(db, actor=auth.actor, endpoint_id=endpoint_id)
    except Conflict as exc:
        return _endpoint_page(request, db, auth, endpoint_id, problem=exc.message, status_code=409)
    return _back(endpoint_id, "test")


@router.post("/{endpoint_id}/delete", response_class=HTMLResponse)
async def delete_webhook(
    request: Request,
    endpoint_id: PathId,
    db: DbSession,
    auth: ConsoleAuth,
    confirm: Annotated[str, Form()] = "",
) -> Response:
    """Delete the endpoint once its URL was typed again (nothing is sent to it after)."""
    endpoint = webhooks.get_endpoint(db, actor=auth.actor, endpoint_id=endpoint_id)
    if confirm.strip() != endpoint.url:
        detail = f"'{confirm[:80]}' is not the endpoint's URL"
        return _endpoint_page(
            request,
            db,
            auth,
            endpoint_id,
            errors={"confirm": detail},
            problem="Type the endpoint's URL to delete it.",
            status_code=400,
        )
    webhooks.delete_endpoint(db, actor=auth.actor, endpoint_id=endpoint_id)
    return RedirectResponse(f"{BASE}?deleted=1", status_code=303)


@router.get("/{endpoint_id}/messages/{message_id}", response_class=HTMLResponse)
async def webhook_message_page(
    request: Request, endpoint_id: PathId, message_id: PathId, db: DbSession, auth: ConsoleAuth
) -> Response:
    """One message: its body and every attempt (status, duration, the answer's first KB)."""
    message = webhooks.get_message(
        db, actor=auth.actor, endpoint_id=endpoint_id, message_id=message_id
    )
    endpoint = webhooks.get_endpoint(db, actor=auth.actor, endpoint_id=endpoint_id)
    return render(
        request,
        "console/webhooks_message.html",
        auth,
        db,
        endpoint=endpoint,
        message=message,
        attempts=webhooks.attempts_of(db, message),
        nav="webhooks",
    )


@router.post("/{endpoint_id}/messages/{message_id}/resend", response_class=HTMLResponse)
async def resend_webhook_message(
    endpoint_id: PathId, message_id: PathId, db: DbSession, auth: ConsoleAuth
) -> Response:
    webhooks.resend_message(db, actor=auth.actor, endpoint_id=endpoint_id, message_id=message_id)
    return _back(endpoint_id, "resent")


@router.post("/{endpoint_id}/replay", response_class=HTMLResponse)
async def replay_webhook_messages(
    request: Request,
    endpoint_id: PathId,
    db: DbSession,
    auth: ConsoleAuth,
    since: Annotated[str, Form()] = "",
) -> Response:
    """Send again every failed message since the moment given (UTC)."""
    try:
        moment = datetime.fromisoformat(since.strip()) if since.strip() else None
    except ValueError:
        moment = None
    try:
        if moment is None:
            raise InvalidInput(
                "Give the moment to replay from.",
                fields={"since": f"'{since[:40]}' is not a moment like 2026-01-31T09:30"},
            )
        count = webhooks.replay_failed(db, actor=auth.actor, endpoint_id=endpoint_id, since=moment)
    except InvalidInput as exc:
        return _endpoint_page(
            request, db, auth, endpoint_id, errors=exc.fields, problem=exc.message, status_code=400
        )
    return RedirectResponse(f"{BASE}/{endpoint_id}?done=replayed&replayed={count}", status_code=303)
