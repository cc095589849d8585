"""A server process leaves what it built at startup out of the garbage collector's full
passes, and collects young objects less often (issue 17: full passes stalled counts)."""

from __future__ import annotations

import gc

from userdesk.web import server


def test_settle_freezes_what_is_built_and_collects_young_objects_less_often() -> None:
    """Everything alive is frozen (none left for a full pass but what comes later), and
    the young generation is collected after YOUNG_COLLECTION_AFTER allocations."""
    threshold = gc.get_threshold()
    built = [object() for _ in range(3)], {"a": [1]}  # a container alive at startup
    try:
        server.settle()
        assert gc.get_freeze_count() > 0
        assert not any(o is built for o in gc.get_objects())  # frozen: out of every pass
        assert gc.get_threshold() == (server.YOUNG_COLLECTION_AFTER, *threshold[1:])
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
