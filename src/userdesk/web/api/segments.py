"""/api/v1/segments: saved views of the Users list."""

from __future__ import annotations

from fastapi import APIRouter, Response

from userdesk.segments import service as segments
from userdesk.segments.schemas import SegmentCreate, SegmentRead, SegmentUpdate
from userdesk.web.deps import CurrentActor, DbSession
from userdesk.web.inputs import PathId

router = APIRouter(prefix="/segments", tags=["segments"])


@router.get("", response_model=list[SegmentRead])
async def list_segments(db: DbSession, actor: CurrentActor) -> list[SegmentRead]:
    """The organization's shared segments and your own."""
    return [SegmentRead.of(s) for s in segments.list_segments(db, actor=actor)]


@router.post("", response_model=SegmentRead, status_code=201)
async def create_segment(data: SegmentCreate, db: DbSession, actor: CurrentActor) -> SegmentRead:
    """Save a query and a sort; `shared` ones are seen by the whole organization."""
    return SegmentRead.of(segments.create_segment(db, actor=actor, data=data))


@router.get("/{segment_id}", response_model=SegmentRead)
async def get_segment(segment_id: PathId, db: DbSession, actor: CurrentActor) -> SegmentRead:
    return SegmentRead.of(segments.get_segment(db, actor=actor, segment_id=segment_id))


@router.patch("/{segment_id}", response_model=SegmentRead)
async def update_segment(
    segment_id: PathId, data: SegmentUpdate, db: DbSession, actor: CurrentActor
) -> SegmentRead:
    """Change the fields given."""
    segment = segments.update_segment(db, actor=actor, segment_id=segment_id, data=data)
    return SegmentRead.of(segment)


@router.delete("/{segment_id}", status_code=204)
async def delete_segment(segment_id: PathId, db: DbSession, actor: CurrentActor) -> Response:
    segments.delete_segment(db, actor=actor, segment_id=segment_id)
    return Response(status_code=204)
