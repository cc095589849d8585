"""/api/v1/imports: users from a CSV file, run as a job."""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, File, Form, UploadFile

from userdesk.db.session import outside_transaction
from userdesk.errors import InvalidInput
from userdesk.imports import service as imports
from userdesk.jobs.schemas import JobRead
from userdesk.web.deps import CurrentActor, DbSession

router = APIRouter(prefix="/imports", tags=["imports"])


@router.post("", response_model=JobRead, status_code=202)
async def import_users(
    db: DbSession,
    actor: CurrentActor,
    file: Annotated[UploadFile, File(description="CSV with a header row, UTF-8.")],
    dry_run: Annotated[bool, Form()] = True,
    send_invitations: Annotated[bool, Form()] = False,
    status: Annotated[
        str,
        Form(
            description='What a row with a password hash makes: "pending" (Not Activated '
            'until they accept the emailed invitation) or "active" (signs in at once).'
        ),
    ] = "pending",
    mapping: Annotated[
        str | None,
        Form(
            description='JSON {"email": "E-mail", "first_name": ...}; '
            "guessed from the header if left out."
        ),
    ] = None,
) -> JobRead:
    """Start an import (a dry run unless `dry_run=false`); follow it at /api/v1/jobs/{id},
    whose `result` lists every row by number with its fate."""
    try:
        chosen = orjson.loads(mapping) if mapping else None
    except orjson.JSONDecodeError:
        chosen = []
    if chosen is not None and not (
        isinstance(chosen, dict) and all(isinstance(c, str) for c in chosen.values())
    ):
        raise InvalidInput(
            "The mapping is not a JSON object of column names.",
            fields={"mapping": "is not a JSON object of column names"},
        )

    def read() -> tuple[imports.Upload, imports.Parsed | None]:
        content = file.file.read(imports.MAX_BYTES + 1)  # one byte over says "too large"
        upload = imports.read_upload(
            actor=actor, filename=file.filename or "upload.csv", content=content
        )
        return upload, imports.parse_upload(upload, chosen)

    # Seconds for a large file: in the thread pool, and outside the transaction, which
    # holds SQLite's only write lock. What is left is a few quick writes.
    upload, parsed = await outside_transaction(db, read)
    job = imports.keep_draft(db, actor=actor, upload=upload)
    job = imports.start(
        db,
        actor=actor,
        job_id=job.id,
        mapping=chosen,
        dry_run=dry_run,
        send_invitations=send_invitations,
        parsed=parsed,
        status=status,
    )
    return JobRead.of(job)
