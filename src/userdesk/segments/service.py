"""Saving, listing, editing and deleting segments.

A private segment belongs to the person who saved it and only they see it. A shared one
is seen by everyone in the organization who may read users; sharing, and editing what is
shared, takes `settings.manage`. API keys save shared segments only (they have no
private space).
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

from sqlalchemy import and_, bindparam, or_, select
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session

from userdesk.access import service as access
from userdesk.access.rules import Actor, Permission
from userdesk.audit import service as audit
from userdesk.db.base import utcnow
from userdesk.db.prepared import Prepared
from userdesk.errors import InvalidInput, NotFound, PermissionDenied
from userdesk.query import builder
from userdesk.segments import columns as list_columns
from userdesk.segments.models import Segment
from userdesk.segments.schemas import SegmentCreate, SegmentUpdate
from userdesk.users.service import SORTS

NAME_MAX = 100


# The segments an actor sees: the organization's shared ones and their own. An actor
# without a user (an API key) has no own ones: `owner_id = NULL` is never true.
_VISIBLE = and_(
    Segment.organization_id == bindparam("organization_id"),
    or_(Segment.shared.is_(True), Segment.owner_id == bindparam("owner_id")),
)
_BY_NAME = (Segment.name, Segment.id)


def _seen_by(actor: Actor) -> dict[str, int | None]:
    return {"organization_id": actor.organization_id, "owner_id": actor.user_id}


def list_segments(db: Session, *, actor: Actor) -> list[Segment]:
    """The shared segments and the actor's own, by name.

    Raises:
        PermissionDenied: the actor may not read users.
    """
    access.require(actor, Permission.USERS_READ)
    return list(db.scalars(select(Segment).where(_VISIBLE).order_by(*_BY_NAME), _seen_by(actor)))


class SegmentLink(NamedTuple):
    """What the console's sidebar shows of a segment: a link to its view."""

    id: int
    name: str
    query: str
    sort: str
    shared: bool


_LINKS = (
    select(Segment.id, Segment.name, Segment.query, Segment.sort, Segment.shared)
    .where(_VISIBLE)
    .order_by(*_BY_NAME)
)


def list_segment_links(db: Session, *, actor: Actor) -> list[SegmentLink]:
    """`list_segments` as links, read as columns: every console page shows them.

    Raises:
        PermissionDenied: the actor may not read users.
    """
    access.require(actor, Permission.USERS_READ)
    connection = db.connection()
    rows = _links_statement(connection.dialect).rows(connection, (), _seen_by(actor))
    return [SegmentLink(*row) for row in rows]


@lru_cache(maxsize=4)
def _links_statement(dialect: Dialect) -> Prepared:
    """_LINKS compiled once per dialect: every console page runs it."""
    return Prepared.named(dialect, _LINKS, ["organization_id", "owner_id"], fixed=True)


def get_segment(db: Session, *, actor: Actor, segment_id: int) -> Segment:
    """A segment the actor sees.

    Raises:
        PermissionDenied: the actor may not read users.
        NotFound: no such segment, or someone else's private one.
    """
    access.require(actor, Permission.USERS_READ)
    segment = db.get(Segment, segment_id)
    mine = actor.user_id is not None and segment is not None and segment.owner_id == actor.user_id
    if segment is None or segment.organization_id != actor.organization_id:
        raise NotFound(f"No segment {segment_id}.", code="segment.not_found")
    if not (segment.shared or mine):
        raise NotFound(f"No segment {segment_id}.", code="segment.not_found")
    return segment


def _check(
    db: Session,
    actor: Actor,
    *,
    name: str,
    query: str,
    sort: str,
    shared: bool,
    columns: list[str] | None = None,
) -> str:
    """The cleaned name; raises InvalidInput naming each field at fault (COLUMNS: keys of
    fields the actor sees)."""
    problems: dict[str, str] = {}
    name = name.strip()
    if not name:
        problems["name"] = "is required"
    elif len(name) > NAME_MAX:
        problems["name"] = f"is longer than {NAME_MAX} characters"
    if sort not in SORTS:
        problems["sort"] = f"'{sort}' is not one of: {', '.join(SORTS)}"
    try:
        parsed = builder.parse_query(query)
        builder.conditions(db, organization_id=actor.organization_id, query=parsed, now=utcnow())
    except InvalidInput as error:
        problems["query"] = error.message
    try:
        list_columns.chosen(db, actor=actor, keys=columns or [])
    except InvalidInput as error:
        problems["columns"] = error.message
    if not shared and actor.user_id is None:
        problems["shared"] = "an API key saves shared segments only"
    if problems:
        raise InvalidInput("The segment is not valid.", fields=problems)
    return name


def _require_share_rights(actor: Actor) -> None:
    if not actor.has(Permission.SETTINGS_MANAGE):
        raise PermissionDenied(
            "Sharing segments with the organization takes the 'settings.manage' permission.",
            code="permission_denied",
        )


def create_segment(db: Session, *, actor: Actor, data: SegmentCreate) -> Segment:
    """Save a query and a sort under a name.

    Raises:
        PermissionDenied: the actor may not read users, or may not share.
        InvalidInput: a bad name, query or sort.
    """
    access.require(actor, Permission.USERS_READ)
    if data.shared:
        _require_share_rights(actor)
    columns = list(dict.fromkeys(data.columns))
    name = _check(
        db,
        actor,
        name=data.name,
        query=data.query,
        sort=data.sort,
        shared=data.shared,
        columns=columns,
    )
    segment = Segment(
        organization_id=actor.organization_id,
        name=name,
        query=data.query.strip(),
        sort=data.sort,
        shared=data.shared,
        columns=columns or None,
        owner_id=actor.user_id,
    )
    db.add(segment)
    db.flush()
    audit.record(
        db,
        actor=actor,
        action="segment.created",
        target_type="segment",
        target_id=segment.id,
        changes={
            "name": name,
            "query": segment.query,
            "sort": segment.sort,
            "shared": data.shared,
            **({"columns": columns} if columns else {}),
        },
    )
    return segment


def _require_edit_rights(actor: Actor, segment: Segment) -> None:
    if segment.shared:
        _require_share_rights(actor)
    elif segment.owner_id != actor.user_id:
        raise NotFound(f"No segment {segment.id}.", code="segment.not_found")


def update_segment(db: Session, *, actor: Actor, segment_id: int, data: SegmentUpdate) -> Segment:
    """Change what was given of a segment.

    Raises:
        PermissionDenied: a shared segment, or sharing, without 'settings.manage'.
        NotFound: the segment is not the actor's to see.
        InvalidInput: a bad name, query or sort.
    """
    segment = get_segment(db, actor=actor, segment_id=segment_id)
    _require_edit_rights(actor, segment)
    if data.shared:
        _require_share_rights(actor)
    columns = None if data.columns is None else list(dict.fromkeys(data.columns))
    after = {
        "name": segment.name if data.name is None else data.name,
        "query": segment.query if data.query is None else data.query.strip(),
        "sort": segment.sort if data.sort is None else data.sort,
        "shared": segment.shared if data.shared is None else data.shared,
        "columns": segment.columns if columns is None else columns or None,
    }
    after["name"] = _check(
        db,
        actor,
        name=str(after["name"]),
        query=str(after["query"]),
        sort=str(after["sort"]),
        shared=bool(after["shared"]),
        columns=columns,
    )
    changes = {
        field: {"from": getattr(segment, field), "to": value}
        for field, value in after.items()
        if getattr(segment, field) != value
    }
    for field, value in after.items():
        setattr(segment, field, value)
    db.flush()
    if changes:
        audit.record(
            db,
            actor=actor,
            action="segment.updated",
            target_type="segment",
            target_id=segment.id,
            changes=changes,
        )
    return segment


def delete_segment(db: Session, *, actor: Actor, segment_id: int) -> None:
    """Delete a segment.

    Raises:
        PermissionDenied: a shared segment without 'settings.manage'.
        NotFound: the segment is not the actor's to see.
    """
    segment = get_segment(db, actor=actor, segment_id=segment_id)
    _require_edit_rights(actor, segment)
    audit.record(
        db,
        actor=actor,
        action="segment.deleted",
        target_type="segment",
        target_id=segment.id,
        changes={"name": segment.name, "query": segment.query, "shared": segment.shared},
    )
    db.delete(segment)
    db.flush()
