"""Streamed CSV downloads, shared by the API, the console and nothing else."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import StreamingResponse

from userdesk.access.rules import Actor
from userdesk.db.base import utcnow
from userdesk.db.session import Database
from userdesk.exports import service as exports


def csv_download(request: Request, actor: Actor, *, q: str, sort: str) -> StreamingResponse:
    """The users of the view as a CSV file; problems are raised before the first byte."""
    database: Database = request.app.state.database
    exports.check(database, actor=actor, q=q, sort=sort)
    name = f"users-{utcnow():%Y%m%d-%H%M%S}.csv"
    return StreamingResponse(
        exports.stream(database, actor=actor, q=q, sort=sort),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
