"""What the API takes and gives for outreach assignments."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from userdesk.validation import ID_PATTERN


class OutreachCreate(BaseModel):
    agent_id: str = Field(
        json_schema_extra={"pattern": ID_PATTERN},  # the service names a bad one
        description="A user holding the Agent role, within your reach.",
    )
    note: str = Field(default="", description="What the agent should know; kept with it.")


class OutreachReassign(BaseModel):
    agent_id: str = Field(
        json_schema_extra={"pattern": ID_PATTERN},  # the service names a bad one
        description="The agent who takes the outreach over.",
    )
    note: str | None = Field(default=None, description="A new note; the old one if left out.")


class AgentChoice(BaseModel):
    """A support agent who can be given an outreach, and whether they are working now."""

    id: str
    name: str
    email: str
    presence: str  # online | away


class OutreachRead(BaseModel):
    id: str
    user_id: str
    agent: AgentChoice
    assigned_by: str
    note: str
    reasons: list[str]  # the user's churn reasons when it was assigned
    created_at: datetime
    done_at: datetime | None
    done_by: str | None
