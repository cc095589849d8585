"""What is sent and shown of a segment."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from userdesk.segments.models import Segment


class SegmentCreate(BaseModel):
    name: str = Field(description="Shown in the sidebar.")
    query: str = Field(default="", description="In the query language, as `q=` takes it.")
    sort: str = Field(default="name", description="As `sort=` takes it.")
    shared: bool = Field(default=False, description="Shown to everyone in the organization.")


class SegmentUpdate(BaseModel):
    name: str | None = None
    query: str | None = None
    sort: str | None = None
    shared: bool | None = None


class SegmentRead(BaseModel):
    id: str
    name: str
    query: str
    sort: str
    shared: bool
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
            owner_id=str(segment.owner_id) if segment.owner_id else None,
            created_at=segment.created_at,
            updated_at=segment.updated_at,
        )
