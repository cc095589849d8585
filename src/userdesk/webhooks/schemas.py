"""What is sent and shown of webhook endpoints, their messages and attempts.

The signing secret is in no read model but `WebhookSecret` (the answers to create and to
rotate): it is shown once, when it is made.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import orjson
from pydantic import BaseModel, Field, StrictBool

from userdesk.webhooks.catalog import EVENT_TYPES
from userdesk.webhooks.models import WebhookAttempt, WebhookEndpoint, WebhookMessage

URL_MAX = 2000
DESCRIPTION_MAX = 500
# An organization's endpoints: each one is a copy of every change sent out, and a worker's
# share of time; fifty is more than any product needs (one per receiving service).
ENDPOINTS_MAX = 50
# A list of event types longer than this is not a choice among the catalog's (duplicates
# are dropped, but only within reason); no type is longer than EVENT_TYPE_MAX.
EVENT_TYPES_MAX = 100
EVENT_TYPE_MAX = 64
MESSAGE_STATUSES = ("pending", "delivered", "failed")
MessageStatus = Literal["pending", "delivered", "failed"]

URL_DOC: dict[str, Any] = {
    "minLength": 1,
    "maxLength": URL_MAX,
    "pattern": "^[Hh][Tt][Tt][Pp][Ss]?://[^\\x00]+$",
}
DESCRIPTION_DOC: dict[str, Any] = {"maxLength": DESCRIPTION_MAX}
# The types the document names; the service checks them (a 400 naming the value).
EVENT_TYPES_DOC: dict[str, Any] = {
    "items": {"type": "string", "enum": list(EVENT_TYPES)},
    "maxItems": EVENT_TYPES_MAX,
}
EVENT_TYPES_OR_NULL_DOC: dict[str, Any] = {
    "anyOf": [{"type": "array", **EVENT_TYPES_DOC}, {"type": "null"}]
}
EVENT_TYPES_DESCRIPTION = (
    "The event types it wants (see the document's `webhooks`); empty or left out: every type."
)


class WebhookEndpointCreate(BaseModel):
    url: str = Field(
        description="Where events are POSTed: https (http only where "
        "USERDESK_WEBHOOKS_ALLOW_PRIVATE allows it), no user or password, no fragment.",
        json_schema_extra=URL_DOC,
    )
    description: str = Field(default="", json_schema_extra=DESCRIPTION_DOC)
    event_types: list[str] = Field(
        default_factory=list,
        description=EVENT_TYPES_DESCRIPTION,
        json_schema_extra=EVENT_TYPES_DOC,
    )
    enabled: StrictBool = Field(default=True, description="False: created paused.")


class WebhookEndpointUpdate(BaseModel):
    url: str | None = Field(default=None, json_schema_extra=URL_DOC)
    description: str | None = Field(default=None, json_schema_extra=DESCRIPTION_DOC)
    event_types: list[str] | None = Field(
        default=None,
        description=EVENT_TYPES_DESCRIPTION,
        json_schema_extra=EVENT_TYPES_OR_NULL_DOC,
    )
    enabled: StrictBool | None = Field(
        default=None, description="False pauses the endpoint; true resumes it."
    )


class WebhookStats(BaseModel):
    """How an endpoint's deliveries went."""

    delivered: int = Field(description="Messages delivered.")
    pending: int = Field(description="Messages waiting for their first or next attempt.")
    failed: int = Field(description="Messages given up on (after the whole retry schedule).")
    attempts_24h: int = Field(description="Attempts in the last 24 hours.")
    failed_attempts_24h: int
    failure_rate_24h: float | None = Field(
        description="Failed attempts / attempts in the last 24 hours; null: none."
    )
    attempts: int = Field(description="Attempts ever.")
    failed_attempts: int
    failure_rate: float | None = Field(description="Failed attempts / attempts, ever.")


class WebhookEndpointRead(BaseModel):
    id: str
    url: str
    description: str
    event_types: list[str] = Field(description="Empty: every type.")
    enabled: bool
    disabled_reason: str | None = Field(
        description="Why it is not enabled: paused by an admin, 410 Gone, failing for days."
    )
    failing_since: datetime | None = Field(description="Since when every attempt has failed.")
    previous_secret_expires_at: datetime | None = Field(
        description="During a rotation's grace period: when the previous secret stops "
        "signing messages (they carry both signatures until then)."
    )
    created_at: datetime
    updated_at: datetime
    stats: WebhookStats | None = None

    @classmethod
    def of(
        cls, endpoint: WebhookEndpoint, stats: WebhookStats | None = None
    ) -> WebhookEndpointRead:
        return cls(
            id=str(endpoint.id),
            url=endpoint.url,
            description=endpoint.description,
            event_types=list(endpoint.event_types or []),
            enabled=endpoint.enabled,
            disabled_reason=endpoint.disabled_reason,
            failing_since=endpoint.failing_since,
            previous_secret_expires_at=endpoint.previous_secret_expires_at,
            created_at=endpoint.created_at,
            updated_at=endpoint.updated_at,
            stats=stats,
        )


class WebhookSecret(BaseModel):
    """The answer to create and rotate: the only time the secret is shown."""

    endpoint: WebhookEndpointRead
    secret: str = Field(
        description="`whsec_` + base64: keep it where the receiver verifies signatures. "
        "It is not shown again."
    )


class WebhookMessageRead(BaseModel):
    id: str
    uid: str = Field(description="The `webhook-id` header: the same on every retry.")
    event_type: str
    user_id: str | None
    status: MessageStatus
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None = Field(description="The next retry, while pending.")
    delivered_at: datetime | None
    last_status_code: int | None
    last_error: str | None

    @classmethod
    def of(cls, message: WebhookMessage) -> WebhookMessageRead:
        return cls(
            id=str(message.id),
            uid=message.uid,
            event_type=message.event_type,
            user_id=str(message.user_id) if message.user_id is not None else None,
            status=message.status,  # type: ignore[arg-type]
            attempts=message.attempts,
            created_at=message.created_at,
            next_attempt_at=message.next_attempt_at if message.status == "pending" else None,
            delivered_at=message.delivered_at,
            last_status_code=message.last_status_code,
            last_error=message.last_error,
        )


class WebhookAttemptRead(BaseModel):
    id: str
    attempted_at: datetime
    outcome: str = Field(description="delivered | failed")
    status_code: int | None = Field(description="null: no answer (refused, timed out, ...).")
    duration_ms: int
    response: str | None = Field(description="The first KB of the answer.")
    error: str | None

    @classmethod
    def of(cls, attempt: WebhookAttempt) -> WebhookAttemptRead:
        return cls(
            id=str(attempt.id),
            attempted_at=attempt.attempted_at,
            outcome=attempt.outcome,
            status_code=attempt.status_code,
            duration_ms=attempt.duration_ms,
            response=attempt.response,
            error=attempt.error,
        )


class WebhookMessageDetail(WebhookMessageRead):
    payload: dict[str, Any] = Field(description="The body sent, as signed.")
    attempt_log: list[WebhookAttemptRead] = Field(description="Newest first.")

    @classmethod
    def with_attempts(
        cls, message: WebhookMessage, attempts: list[WebhookAttempt]
    ) -> WebhookMessageDetail:
        return cls(
            **WebhookMessageRead.of(message).model_dump(),
            payload=orjson.loads(message.body),
            attempt_log=[WebhookAttemptRead.of(a) for a in attempts],
        )


class WebhookMessagePage(BaseModel):
    items: list[WebhookMessageRead]
    next_cursor: str | None


class WebhookReplayed(BaseModel):
    replayed: int = Field(description="How many failed messages were set to go again.")
