"""The sidebar's segment links: the segments `list_segments` gives, read as columns."""

from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy.orm import Session

from tests import factories
from userdesk.access import service as access
from userdesk.errors import PermissionDenied
from userdesk.organizations.models import Organization
from userdesk.segments import service as segments
from userdesk.segments.schemas import SegmentCreate


def test_links_are_the_shared_segments_and_the_actors_own_by_name(
    db: Session, org: Organization
) -> None:
    admin = factories.make_admin(db, org)
    other = factories.make_admin(db, org)
    me, them = access.actor_for_user(db, admin), access.actor_for_user(db, other)
    for actor, name, shared in (
        (me, "b mine", False),
        (them, "a shared", True),
        (them, "c theirs", False),
    ):
        segments.create_segment(
            db, actor=actor, data=SegmentCreate(name=name, query="status:active", shared=shared)
        )
    elsewhere = factories.make_organization(db)
    segments.create_segment(
        db,
        actor=access.actor_for_user(db, factories.make_admin(db, elsewhere)),
        data=SegmentCreate(name="0 elsewhere", shared=True),
    )
    links = segments.list_segment_links(db, actor=me)
    assert [s.name for s in links] == ["a shared", "b mine"]
    assert [
        (s.id, s.name, s.query, s.sort, s.shared) for s in segments.list_segments(db, actor=me)
    ] == [tuple(link) for link in links]
    # An actor without a user of its own (an API key) sees the shared ones only.
    keyless = dataclasses.replace(me, user_id=None)
    assert [s.name for s in segments.list_segment_links(db, actor=keyless)] == ["a shared"]
    assert [s.name for s in segments.list_segments(db, actor=keyless)] == ["a shared"]


def test_links_need_users_read(db: Session, org: Organization) -> None:
    member = factories.make_user(db, org)
    with pytest.raises(PermissionDenied):
        segments.list_segment_links(db, actor=access.actor_for_user(db, member))
