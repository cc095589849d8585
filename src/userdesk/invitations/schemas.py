"""What is sent and shown of invitations."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from userdesk.validation import ID_PATTERN

# The document states what the service checks (a 400 naming the field) without pydantic
# checking it: the console builds these from its forms and shows the service's message.
AN_ID: dict[str, Any] = {"pattern": ID_PATTERN}
IDS: dict[str, Any] = {"items": {"type": "string", "pattern": ID_PATTERN}}


class Person(BaseModel):
    email: str = Field(json_schema_extra={"format": "email"})
    first_name: str = ""
    last_name: str = ""
    attributes: dict[str, Any] = Field(
        default={},
        description=(
            "Values of the organization's fields (key to value), checked as on a user; "
            "fields required on invitation must be given (a 400 names "
            "`people[i].attributes.<key>`)."
        ),
    )


class WelcomeEmail(BaseModel):
    send: bool = Field(default=True, strict=True)  # true or false, not 0 or "no"
    subject: str | None = Field(
        default=None, description="This send's subject (else the saved one)."
    )
    body: str | None = Field(default=None, description="This send's body (else the saved one).")


class InvitationCreate(BaseModel):
    people: list[Person] = Field(json_schema_extra={"minItems": 1})
    group_ids: list[str] = Field(default=[], json_schema_extra=IDS)
    team_id: str | None = Field(default=None, json_schema_extra=AN_ID)
    role_ids: list[str] = Field(default=[], json_schema_extra=IDS)
    welcome_email: WelcomeEmail = WelcomeEmail()


class InvitationRead(BaseModel):
    id: str
    user_id: str
    email: str
    status: str  # pending | accepted | expired | revoked
    invited_by: str
    created_at: datetime
    sent_at: datetime | None
    expires_at: datetime
    resend_count: int
    accepted_at: datetime | None
    revoked_at: datetime | None


class AlreadyThere(BaseModel):
    email: str
    user_id: str


class InvitationResult(BaseModel):
    created: list[InvitationRead]
    existing: list[AlreadyThere] = Field(
        description="People whose email is in the organization already: not invited again."
    )
