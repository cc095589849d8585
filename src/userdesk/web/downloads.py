"""Streamed CSV downloads, shared by the API, the console and nothing else."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import StreamingResponse

from userdesk.access.rules import Actor
from userdesk.db.base import utcnow
from userdesk.db.replicas import READS_KEY, WROTE_COOKIE, principal_of
from userdesk.db.session import Database
from userdesk.exports import service as exports


def csv_download(
    request: Request, actor: Actor, *, q: str, sort: str, columns: list[str] | None = None
) -> StreamingResponse:
    """The users of the view as a CSV file, with the custom fields COLUMNS names (keys;
    None: none); problems are raised before the first byte."""
    database: Database = request.app.state.database
    principal = principal_of(request.scope["state"]) if READS_KEY in request.scope else None
    if principal is not None:  # on a replica, if one is healthy (db.replicas)
        database = database.reading(principal=principal, cookie=request.cookies.get(WROTE_COOKIE))
    fields = exports.check(database, actor=actor, q=q, sort=sort, columns=columns or [])
    name = f"users-{utcnow():%Y%m%d-%H%M%S}.csv"
    return StreamingResponse(
        exports.stream(database, actor=actor, q=q, sort=sort, columns=fields),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
