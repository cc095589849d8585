"""What is sent and shown of invitations."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class Person(BaseModel):
    email: str
    first_name: str = ""
    last_name: str = ""


class WelcomeEmail(BaseModel):
    send: bool = True
    subject: str | None = Field(
        default=None, description="This send's subject (else the saved one)."
    )
    body: str | None = Field(default=None, description="This send's body (else the saved one).")


class InvitationCreate(BaseModel):
    people: list[Person]
    group_ids: list[str] = []
    team_id: str | None = None
    role_ids: list[str] = []
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
