"""The app of each server process when `userdesk serve --workers N` runs several.

uvicorn's process manager starts every server process afresh (spawn, not fork), so each
builds its own app and engine from the environment it inherits: `serve` migrated the
database and made the demo data once before starting them, and put in that environment
what it decided (the base URL links point at). Nothing a request leaves behind stays in
a process's memory: sessions, rate limits, import files, jobs and mail are rows of the
database that every process shares.
"""

from __future__ import annotations

from fastapi import FastAPI

from userdesk.config import get_settings
from userdesk.db.session import Database
from userdesk.web.app import create_app

IMPORT_STRING = "userdesk.web.server:app"  # what uvicorn imports in each server process


def app() -> FastAPI:
    """The ASGI app of one server process (uvicorn calls it: a factory)."""
    settings = get_settings()
    return create_app(settings, Database.from_url(settings.database_url))
