"""What is sent and shown of a segment."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from userdesk.segments.models import Segment

# What the document states and the service checks (a 400 naming the field): the console
# builds these from its form and shows the service's message.
NAME_DOC: dict[str, Any] = {
    "minLength": 1,
    "maxLength": 100,
    "pattern": "^[^\\x00]*[^\\s\\x00][^\\x00]*$",
}
SORT_DOC: dict[str, Any] = {
    "enum": ["name", "-name", "email", "-email", "created", "-created", "seen", "-seen"]
}


class SegmentCreate(BaseModel):
    name: str = Field(description="Shown in the sidebar.", json_schema_extra=NAME_DOC)
    query: str = Field(default="", description="In the query language, as `q=` takes it.")
    sort: str = Field(
        default="name", description="As `sort=` takes it.", json_schema_extra=SORT_DOC
    )
    shared: bool = Field(default=False, description="Shown to everyone in the organization.")
    columns: list[str] = Field(
        default_factory=list,
        description="Custom fields (their keys) shown as extra columns of the list.",
    )


class SegmentUpdate(BaseModel):
    name: str | None = Field(default=None, json_schema_extra=NAME_DOC)
    query: str | None = None
    sort: str | None = Field(default=None, json_schema_extra=SORT_DOC)
    shared: bool | None = None
    columns: list[str] | None = None


class SegmentRead(BaseModel):
    id: str
    name: str
    query: str
    sort: str
    shared: bool
    columns: list[str]
    owner_id: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, segment: Segment) -> SegmentRead:
        return cls(
            id=str(segment.id),
            name=segment.name,
            query=segment.query,
            sort=segment.sort,
            shared=segment.shared,
            columns=list(segment.columns or []),
            owner_id=str(segment.owner_id) if segment.owner_id else None,
            created_at=segment.created_at,
            updated_at=segment.updated_at,
        )
