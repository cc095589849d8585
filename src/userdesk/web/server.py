"""The app of each server process when `userdesk serve --workers N` runs several.

uvicorn's process manager starts every server process afresh (spawn, not fork), so each
builds its own app and engine from the environment it inherits: `serve` migrated the
database and made the demo data once before starting them, and put in that environment
what it decided (the base URL links point at). Nothing a request leaves behind stays in
a process's memory: sessions, rate limits, import files, jobs and mail are rows of the
database that every process shares.
"""

from __future__ import annotations

import gc

from fastapi import FastAPI

from userdesk.config import get_settings
from userdesk.db.session import Database
from userdesk.web.app import create_app

IMPORT_STRING = "userdesk.web.server:app"  # what uvicorn imports in each server process


def app() -> FastAPI:
    """The ASGI app of one server process (uvicorn calls it: a factory)."""
    settings = get_settings()
    built = create_app(settings, Database.from_settings(settings))
    settle()
    return built


# Allocations between two collections of the youngest objects (Python's default: 700).
# A request that allocates much (a count streams thousands of rows) ran several, and each
# moved the request's own objects, alive then, to the older generations, whose growth
# soon set off a full pass: every second or two under the counts' bench, 25-110 ms each
# even with the startup frozen. Now a request seldom sees one; each takes a few ms.
YOUNG_COLLECTION_AFTER = 10_000


def settle() -> None:
    """What the process has built so far (modules, the app, its routes) left out of the
    garbage collector's full passes, before serving: some 150,000 objects that each full
    pass went through for 100-450 ms on this 2-core machine, stalling whichever request
    was running (a count: 120 -> 600 ms). Collected first, so no garbage is kept; what is
    built later is collected as before, less often (YOUNG_COLLECTION_AFTER; issue 17)."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_AFTER, middle, old)
