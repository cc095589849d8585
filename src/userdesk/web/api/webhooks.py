"""/api/v1/webhooks: the organization's webhook endpoints, what was sent to them, and
sending it again. Every route takes `webhooks.manage`; the secret is answered by create
and rotate alone."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field

from userdesk.web.api.params import IsoDateTime
from userdesk.web.deps import CurrentActor, DbSession, SettingsDep
from userdesk.web.inputs import PathId
from userdesk.webhooks import service as webhooks
from userdesk.webhooks.catalog import EVENT_TYPES
from userdesk.webhooks.schemas import (
    MESSAGE_STATUSES,
    WebhookEndpointCreate,
    WebhookEndpointRead,
    WebhookEndpointUpdate,
    WebhookMessageDetail,
    WebhookMessagePage,
    WebhookMessageRead,
    WebhookReplayed,
    WebhookSecret,
)

router = APIRouter(prefix="/webhooks", tags=["webhooks"])

# The secret must not linger in a cache on the way.
NO_STORE = {"Cache-Control": "no-store"}
# The filters' values as the document gives them; the service checks them, naming a bad
# value without sending a huge one back whole.
EVENT_TYPE_DOC: dict[str, Any] = {"enum": list(EVENT_TYPES)}
STATUS_DOC: dict[str, Any] = {"enum": list(MESSAGE_STATUSES)}


class ReplayBody(BaseModel):
    since: IsoDateTime = Field(
        description="Every failed message written since this moment (UTC when it has no "
        "offset) is sent again."
    )


@router.get("", response_model=list[WebhookEndpointRead])
async def list_webhooks(db: DbSession, actor: CurrentActor) -> list[WebhookEndpointRead]:
    """The organization's endpoints, oldest first, each with its delivery counts."""
    endpoints = webhooks.list_endpoints(db, actor=actor)
    stats = webhooks.stats_of(db, actor=actor, endpoint_ids=[e.id for e in endpoints])
    return [WebhookEndpointRead.of(e, stats[e.id]) for e in endpoints]


@router.post("", response_model=WebhookSecret, status_code=201)
async def create_webhook(
    data: WebhookEndpointCreate,
    db: DbSession,
    actor: CurrentActor,
    settings: SettingsDep,
    response: Response,
) -> WebhookSecret:
    """Add an endpoint. The answer holds its signing secret, which is not shown again."""
    created = webhooks.create_endpoint(db, actor=actor, settings=settings, data=data)
    response.headers.update(NO_STORE)
    return WebhookSecret(endpoint=WebhookEndpointRead.of(created.endpoint), secret=created.secret)


@router.get("/{webhook_id}", response_model=WebhookEndpointRead)
async def get_webhook(
    webhook_id: PathId, db: DbSession, actor: CurrentActor
) -> WebhookEndpointRead:
    """One endpoint, with its delivery counts and failure rate."""
    endpoint = webhooks.get_endpoint(db, actor=actor, endpoint_id=webhook_id)
    stats = webhooks.stats_of(db, actor=actor, endpoint_ids=[endpoint.id])
    return WebhookEndpointRead.of(endpoint, stats[endpoint.id])


@router.patch("/{webhook_id}", response_model=WebhookEndpointRead)
async def update_webhook(
    webhook_id: PathId,
    data: WebhookEndpointUpdate,
    db: DbSession,
    actor: CurrentActor,
    settings: SettingsDep,
) -> WebhookEndpointRead:
    """Change the fields given; `enabled: false` pauses it, `true` resumes it."""
    endpoint = webhooks.update_endpoint(
        db, actor=actor, settings=settings, endpoint_id=webhook_id, data=data
    )
    stats = webhooks.stats_of(db, actor=actor, endpoint_ids=[endpoint.id])
    return WebhookEndpointRead.of(endpoint, stats[endpoint.id])


@router.delete("/{webhook_id}", status_code=204)
async def delete_webhook(webhook_id: PathId, db: DbSession, actor: CurrentActor) -> Response:
    """Delete the endpoint, its messages and their attempts."""
    webhooks.delete_endpoint(db, actor=actor, endpoint_id=webhook_id)
    return Response(status_code=204)


@router.post("/{webhook_id}/rotate", response_model=WebhookSecret)
async def rotate_webhook_secret(
    webhook_id: PathId,
    db: DbSession,
    actor: CurrentActor,
    settings: SettingsDep,
    response: Response,
) -> WebhookSecret:
    """A new signing secret, answered once. For 24 hours messages carry signatures by
    both the new and the previous secret."""
    rotated = webhooks.rotate_secret(db, actor=actor, settings=settings, endpoint_id=webhook_id)
    response.headers.update(NO_STORE)
    return WebhookSecret(endpoint=WebhookEndpointRead.of(rotated.endpoint), secret=rotated.secret)


@router.post("/{webhook_id}/test", response_model=WebhookMessageRead, status_code=202)
async def send_webhook_test(
    webhook_id: PathId, db: DbSession, actor: CurrentActor
) -> WebhookMessageRead:
    """Send a `webhook.test` event to this endpoint alone; the answer is the message,
    delivered by the worker within seconds (409 when the endpoint is paused)."""
    return WebhookMessageRead.of(webhooks.send_test(db, actor=actor, endpoint_id=webhook_id))


@router.get("/{webhook_id}/messages", response_model=WebhookMessagePage)
async def list_webhook_messages(
    webhook_id: PathId,
    db: DbSession,
    actor: CurrentActor,
    event_type: Annotated[str | None, Query(json_schema_extra=EVENT_TYPE_DOC)] = None,
    status: Annotated[str | None, Query(json_schema_extra=STATUS_DOC)] = None,
    cursor: Annotated[str | None, Query(description="`next_cursor` of the page before.")] = None,
    limit: Annotated[int, Query(ge=1, le=webhooks.PAGE_MAX)] = webhooks.PAGE_SIZE,
) -> WebhookMessagePage:
    """The endpoint's messages, newest first; `event_type` and `status` narrow them."""
    page = webhooks.list_messages(
        db,
        actor=actor,
        endpoint_id=webhook_id,
        event_type=event_type,
        status=status,
        cursor=cursor,
        limit=limit,
    )
    return WebhookMessagePage(
        items=[WebhookMessageRead.of(m) for m in page.items], next_cursor=page.next_cursor
    )


@router.get("/{webhook_id}/messages/{message_id}", response_model=WebhookMessageDetail)
async def get_webhook_message(
    webhook_id: PathId, message_id: PathId, db: DbSession, actor: CurrentActor
) -> WebhookMessageDetail:
    """One message: the body sent and every attempt (status code, duration, the first KB
    of the answer, the error), newest first; `next_attempt_at` while it waits."""
    message = webhooks.get_message(db, actor=actor, endpoint_id=webhook_id, message_id=message_id)
    return WebhookMessageDetail.with_attempts(message, webhooks.attempts_of(db, message))


@router.post(
    "/{webhook_id}/messages/{message_id}/resend", response_model=WebhookMessageRead, status_code=202
)
async def resend_webhook_message(
    webhook_id: PathId, message_id: PathId, db: DbSession, actor: CurrentActor
) -> WebhookMessageRead:
    """Send the message again now: the same `webhook-id` and body."""
    message = webhooks.resend_message(
        db, actor=actor, endpoint_id=webhook_id, message_id=message_id
    )
    return WebhookMessageRead.of(message)


@router.post("/{webhook_id}/replay", response_model=WebhookReplayed, status_code=202)
async def replay_webhook_messages(
    webhook_id: PathId, data: ReplayBody, db: DbSession, actor: CurrentActor
) -> WebhookReplayed:
    """Send again every failed message of the endpoint written since `since`."""
    count = webhooks.replay_failed(db, actor=actor, endpoint_id=webhook_id, since=data.since)
    return WebhookReplayed(replayed=count)
